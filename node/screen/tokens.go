package screen

import "strings"

// findTokens finds the provider tokens that start with a fixed prefix, in
// one pass: it visits the start of every run of [A-Za-z0-9_-] once and
// only looks further when the run's first bytes are a known prefix.
func findTokens(c *ctx, s string) {
	for i := 0; i < len(s); {
		b := s[i]
		if !isTok(b) {
			i++
			continue
		}
		end := runOf(s, i, cTok)
		if i+1 < len(s) && vendorPair(b, s[i+1]) {
			c.tokenVendor(s, i)
		}
		switch b {
		case 'A':
			c.tokenA(s, i)
		case 'g':
			c.tokenGitHub(s, i)
		case 'x':
			c.tokenSlack(s, i, end)
		case 's', 'r':
			c.tokenSK(s, i, end)
			c.sentryOrg(s, i)
		case 'e':
			c.tokenJWT(s, i)
		case 'Z':
			c.tokenJWT64(s, i)
		}
		if end-i >= 5 { // the shortest run tokenShaped checks
			c.tokenShaped(s, i, end)
		}
		if end-i >= 8 { // "tskey-" and more; "sc_" and 5 or more of the client id
			c.tokenParts(s, i, end)
		}
		i = end
	}
}

// publicGoogleKeys are Google API keys published as test values in
// Firebase's open-source SDKs (firebase-js-sdk's installations
// precondition tests; FirebaseOptions in firebase-android-sdk's tests):
// anyone can read them, so they are no secret to leak. The list is
// gitleaks' allowlist for its gcp-api-key rule (v8.30.1), which names
// firebase-android-sdk as the source of every one.
var publicGoogleKeys = map[string]bool{
	"AIzaSyabcdefghijklmnopqrstuvwxyz1234567": true,
	"AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs": true,
	"AIzaSyCkEhVjf3pduRDt6d1yKOMitrUEke8agEM": true,
	"AIzaSyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU": true,
	"AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0": true,
	"AIzayDNSXIbFmlXbIE6mCzDLQAqITYefhixbX4A": true,
	"AIzaSyAdOS2zB6NCsk1pCdZ4-P6GBdi_UUPwX7c": true,
	"AIzaSyASWm6HmTMdYWpgMnjRBjxcQ9CKctWmLd4": true,
	"AIzaSyANUvH9H9BsUccjsu2pCmEkOPjjaXeDQgY": true,
	"AIzaSyA5_iVawFQ8ABuTZNUdcwERLJv_a_p4wtM": true,
	"AIzaSyA4UrcGxgwQFTfaI3no3t7Lt1sjmdnP5sQ": true,
	"AIzaSyDSb51JiIcB6OJpwwMicseKRhhrOq1cS7g": true,
	"AIzaSyBF2RrAIm4a0mO64EShQfqfd2AFnzAvvuU": true,
	"AIzaSyBcE-OOIbhjyR83gm4r2MFCu4MJmprNXsw": true,
	"AIzaSyB8qGxt4ec15vitgn44duC5ucxaOi4FmqE": true,
	"AIzaSyA8vmApnrHNFE0bApF4hoZ11srVL_n0nvY": true,
}

var awsPrefixes = [...]string{"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"}

// tokenA: AWS access key ids (a 4-letter prefix and 16 of [A-Z0-9]) and
// Google API keys (AIza and 35 of [A-Za-z0-9_-], 4 bits a byte of entropy
// or more over the key, as gitleaks asks).
func (c *ctx) tokenA(s string, i int) {
	if strings.HasPrefix(s[i:], "AIza") {
		if end := i + 39; end <= len(s) && runOf(s, i, cTok) == end && !patterned(s[i+4:end]) && entropy(s[i:end]) >= 4 && !publicGoogleKeys[s[i:end]] {
			c.add(rGCP, i, end)
		}
		return
	}
	if i+20 > len(s) || (i+20 < len(s) && isAlnum(s[i+20])) {
		return
	}
	for _, p := range awsPrefixes {
		if s[i:i+4] == p {
			if upperDigits(s[i+4:i+20]) && hasDigit(s[i+4:i+20]) && s[i+13:i+20] != "EXAMPLE" {
				c.add(rAWS, i, i+20)
			}
			return
		}
	}
}

func upperDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if class[s[i]]&(cUpper|cDigit) == 0 {
			return false
		}
	}
	return true
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			return true
		}
	}
	return false
}

// tokenGitHub: ghp_/gho_/ghu_/ghs_/ghr_ and 36 alphanumerics, a GitHub
// App installation token of the JWT layout (ghs_<app id>_<JWT>), or
// github_pat_ and 82 of [A-Za-z0-9_].
func (c *ctx) tokenGitHub(s string, i int) {
	t := s[i:]
	if end := ghsJWTEnd(s, i); end > 0 {
		c.addTail(rGitHub, i, end, tailJWT, nil)
		return
	}
	if len(t) >= 40 && t[0:2] == "gh" && strings.IndexByte("pousr", t[2]) >= 0 && t[3] == '_' {
		if n := alnumRun(t[4:]); n >= 36 && n <= 40 && mixed(t[4:4+n]) {
			c.addTail(rGitHub, i, i+4+n, tailSet, csAlnum)
		}
		return
	}
	if strings.HasPrefix(t, "github_pat_") {
		end := runOf(s, i+11, cDigit|cUpper|cLower)
		for end < len(s) && (isAlnum(s[end]) || s[end] == '_') {
			end++
		}
		if end-i-11 >= 70 && !patterned(s[i+11:i+81]) {
			c.addTail(rGitHub, i, end, tailSet, csWord)
		}
	}
}

// ghsJWTEnd returns where the installation token ghs_<digits>_<JWT> at
// s[i:] ends, or 0. The id has 1 to 12 digits, so that the JWT's first
// two parts start within the rule's decision window, as for a bare JWT.
func ghsJWTEnd(s string, i int) int {
	if !strings.HasPrefix(s[i:], "ghs_") {
		return 0
	}
	d := runOf(s, i+4, cDigit)
	if d == i+4 || d-i-4 > 12 || d >= len(s) || s[d] != '_' {
		return 0
	}
	return jwtEnd(s, d+1)
}

func alnumRun(s string) int { return runOf(s, 0, cDigit|cUpper|cLower) }

// mixed reports whether s has both a digit and a letter, which random
// tokens of 20 or more characters almost always do and words do not.
func mixed(s string) bool {
	var k uint8
	for i := 0; i < len(s); i++ {
		k |= class[s[i]]
	}
	return k&cDigit != 0 && k&(cUpper|cLower) != 0
}

// tokenSlack: xoxb-, xoxp-, xoxa-, xoxr-, xoxs- and xapp- tokens.
func (c *ctx) tokenSlack(s string, i, end int) {
	t := s[i:end]
	ok := len(t) >= 15 && (strings.HasPrefix(t, "xapp-") ||
		(strings.HasPrefix(t, "xox") && strings.IndexByte("abprs", t[3]) >= 0 && t[4] == '-'))
	if ok && strings.HasPrefix(t, "xox") && (t[3] == 'b' || t[3] == 'p') {
		ok = runOf(t, 5, cDigit) >= 13 // xoxb- and xoxp- tokens start with an id of 8 or more digits
	}
	if ok && hasDigit(t[5:]) && len(t)-5 >= 10 && t[len(t)-1] != '-' {
		c.addTail(rSlack, i, end, tailSet, csTok)
	}
}

// tokenSK: Stripe secret and restricted keys ((sk|rk)_(live|test)_...) and
// OpenAI keys (sk-proj-, sk-svcacct-, sk-admin-, or sk- and 32+ alphanumerics).
func (c *ctx) tokenSK(s string, i, end int) {
	t := s[i:end]
	if len(t) < 3 || t[1] != 'k' {
		return
	}
	switch t[2] {
	case '_':
		if strings.HasPrefix(t[3:], "live_") || strings.HasPrefix(t[3:], "test_") || strings.HasPrefix(t[3:], "prod_") {
			if n := alnumRun(t[8:]); n >= 10 && mixed(t[8:8+n]) {
				c.addTail(rStripe, i, i+8+n, tailSet, csAlnum)
			}
		}
	case '-':
		if t[0] == 's' {
			c.openAI(s, i, end)
		}
	}
}

func (c *ctx) openAI(s string, i, end int) {
	t := s[i+3 : end]
	for _, p := range [...]string{"proj-", "svcacct-", "admin-"} {
		if strings.HasPrefix(t, p) {
			if body := t[len(p):]; len(body) >= 20 && mixed(body) {
				c.addTail(rOpenAI, i, end, tailSet, csTok)
			}
			return
		}
	}
	if n := alnumRun(t); n >= 32 && mixed(t[:n]) {
		c.addTail(rOpenAI, i, i+3+n, tailSet, csAlnum)
	}
}

// tokenJWT: three base64url parts separated by dots, the first two
// starting with "ey" (the encoding of '{'); the signature may be empty.
func (c *ctx) tokenJWT(s string, i int) {
	if end := jwtEnd(s, i); end > 0 {
		c.add(rJWT, i, end)
	}
}

// jwtEnd returns where the JWT at s[i:] ends, or 0.
func jwtEnd(s string, i int) int {
	if !strings.HasPrefix(s[i:], "ey") {
		return 0
	}
	h := runOf(s, i, cTok)
	if h-i < 10 || h >= len(s) || s[h] != '.' || !strings.HasPrefix(s[h+1:], "ey") {
		return 0
	}
	p := jwtPart(s, h+1)
	if p-h-1 < 10 {
		return 0
	}
	if p < len(s) && s[p] == '.' {
		return jwtPart(s, p+1)
	}
	return p
}

// jwtPart returns the end of a JWT part: base64url, and the '/' and '\'
// of standard base64 and escaped text.
func jwtPart(s string, i int) int {
	for i < len(s) && (isTok(s[i]) || s[i] == '/' || s[i] == '\\' || s[i] == '=') {
		i++
	}
	return i
}

// tokenJWT64: a JWT encoded once more in base64, "ZXlK" being the
// encoding of "eyJ". The first 96 bytes decide.
func (c *ctx) tokenJWT64(s string, i int) {
	if !strings.HasPrefix(s[i:], "ZXlK") {
		return
	}
	end := runOf(s, i, cB64|cTok)
	if end-i < 96 {
		return
	}
	c.dec, _ = b64Decode(c.dec[:0], s[i:i+96])
	if strings.HasPrefix(string(c.dec), "eyJ") {
		c.addTail(rJWT, i, end, tailSet, csB64Tok)
	}
}
