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
// Pages: overview (counts, a requests-per-hour SVG chart, empty states
// with the commands to start); my access (a person's devices, own
// revoke, the models they may use and on what terms, the commands that
// connect); people (groups, role, MFA, devices; disable and enable),
// devices (expire now, revoke), nodes (integrity, lockdown and its drop
// counters, revoke; enrollment keys with the install command shown once
// and a copy button) and models (who may use each, which nodes serve it,
// its pin); the policy editor and its history; audit records and the
// admin trail. Every destructive action has a confirmation page. The
// tests here drive the pages over a fake Backend; coordinator/ui*_test.go
// drive them against a real coordinator with internal/browsertest, and
// internal/uitest in Chromium.
package ui
