// Package passkeytest holds moat's real-browser tests of passkeys
// (issue 20): Debian's chromium with a virtual WebAuthn authenticator
// (DevTools protocol), driven by the Playwright script in js/.
//
// The Go test starts a coordinator whose public URL is on localhost
// (WebAuthn refuses IP addresses), configured to accept only a
// phishing-resistant factor from its IdP so that a sign-in with an app
// code is stepped up at the coordinator, a node serving a stand-in model
// under a grant that demands a phishing-resistant factor, and the device
// logins the script finishes in the browser. The script registers and
// uses passkeys at the embedded IdP and at the coordinator's step-up,
// and sees replayed, forged and removed credentials refused; the test
// then checks the factor each device recorded and that the guard admits
// the passkey device and refuses the one signed in with an app.
package passkeytest
