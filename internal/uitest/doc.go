// Package uitest holds moat's real-browser tests of the web UI (issue 8).
//
// The Go test builds a whole scene with the ordinary harnesses — a
// coordinator from coordtest, a node serving a stand-in model, an admin
// and two members, a member's device whose hostname is an HTML tag, and a
// real request through the node's guard — and then runs the Playwright
// scripts of js/ (playwright-core, which never downloads a browser)
// against Debian's chromium. The scripts sign in through the embedded
// identity provider with password and TOTP, use the pages as a person
// would, and exit non-zero with a message naming the failed check.
//
// Every page is saved as a full-page screenshot under artifacts/ui/ at the
// repository root. With MOAT_UI_DOCS=1 the test also refreshes the README's
// pictures in docs/img/.
package uitest
