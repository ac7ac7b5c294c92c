// Package ui is moat's admin and self-service web UI: an http.Handler,
// server-rendered from embedded templates, over a small interface that the
// coordinator satisfies (Backend). It imports neither coordinator nor node.
//
// Safety holds in this package for every page: a strict
// Content-Security-Policy (CSP; scripts and styles only from static files),
// html/template escaping, a session-bound CSRF token checked on every
// POST before the page runs, and role checks (admin pages answer 403 to
// auditors and members). Signing in and out is the coordinator's (GET
// /ui/login and /ui/logout), through the same OIDC + MFA path as devices.
//
// Pages so far: overview (counts and a requests-per-hour SVG chart), my
// access (a member's devices), devices (revoke with a confirmation step),
// nodes and enrollment keys (the install command shown once, with a copy
// button). Still to come (issue 8): people, models, policy editor and
// history, audit, the admin trail, expire-now, and the real-browser
// (Playwright + Chromium) suite with screenshots; the tests here and in
// coordinator/ui_test.go drive the pages headlessly with
// internal/browsertest.
package ui
