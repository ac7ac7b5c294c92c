package screen

import "strings"

// A vendor token is a fixed prefix and a body of at least min bytes from
// one character set. The decision needs only the prefix and the first min
// bytes of the body (so whole and chunked scans agree); the match runs to
// the end of the body, however long.
type vendorToken struct {
	prefix string
	fold   bool // the prefix is matched without regard to case
	body   *charset
	min    int
	max    int // if not 0, a longer body is something else
	rule   ruleID
	// ent is the least entropy, in bits per byte, of the body's first min
	// bytes: it tells keys from placeholders such as hf_xxxx...; 0 means 3.
	ent float64
	// exact: the prefix alone is specific enough; the body is not checked
	// for entropy or placeholder patterns.
	exact bool
	// whole is the least entropy of the whole token (prefix and body, up
	// to max bytes or else min), where gitleaks' rule of the same name
	// sets one above 3; 0: none.
	whole float64
	// short: the prefix is too short to tell a token by itself (Vault's
	// "s."): the body must hold a digit and a letter (else it takes words:
	// s.AcceptanceTimeout), and a '.' before the prefix makes it part of a
	// dotted name (o.s.b).
	short bool
}

// charset is a set of bytes.
type charset [256]bool

// chars builds a charset from ranges and single bytes: "a-zA-Z0-9_-".
func chars(spec string) *charset {
	var c charset
	for i := 0; i < len(spec); i++ {
		if i+2 < len(spec) && spec[i+1] == '-' {
			for b := spec[i]; b <= spec[i+2]; b++ {
				c[b] = true
			}
			i += 2
			continue
		}
		c[spec[i]] = true
	}
	return &c
}

// span returns how many bytes from i are in c.
func (c *charset) span(s string, i int) int {
	j := i
	for j < len(s) && c[s[j]] {
		j++
	}
	return j - i
}

var (
	csAlnum   = chars("a-zA-Z0-9")
	csAlpha   = chars("a-zA-Z")
	csUpAlnum = chars("A-Z0-9")
	csHex     = chars("a-fA-F0-9")
	csHexDash = chars("a-fA-F0-9-")
	csTok     = chars("a-zA-Z0-9_-")
	csWord    = chars("a-zA-Z0-9_")
	csTokDot  = chars("a-zA-Z0-9_.=-")
	csB64     = chars("a-zA-Z0-9+/=")
	csB64Tok  = chars("a-zA-Z0-9+/=_-")
	csUpDash  = chars("A-Z0-9-")
	csBech32  = chars("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")
	csLoAlnum = chars("a-z0-9")
)

// vendorTokens are the provider tokens with a fixed prefix (after
// gitleaks' rules of the same names), most specific prefix first within
// one first byte.
var vendorTokens = []vendorToken{
	{prefix: "sk-ant-", body: csTok, min: 80, rule: rAnthropic},
	{prefix: "hf_", body: csAlpha, min: 34, max: 34, rule: rHuggingFace, ent: 2.5},
	{prefix: "api_org_", body: csAlpha, min: 34, max: 34, rule: rHuggingFace, ent: 2.5},
	{prefix: "AGE-SECRET-KEY-1", body: csBech32, min: 58, rule: rAge, exact: true},
	{prefix: "ntn_", body: csAlnum, min: 46, whole: 4, rule: rNotion},
	{prefix: "_gitlab_session=", body: csAlnum, min: 32, rule: rGitLab},
	{prefix: "GR1348941", body: csTok, min: 20, rule: rGitLab},
	{prefix: "xoxe.xox", body: csTok, min: 100, rule: rSlack},
	{prefix: "xoxe-", body: csTok, min: 100, rule: rSlack},
	{prefix: "xoxo-", body: csTok, min: 20, rule: rSlack},
	{prefix: "ops_eyJ", body: csB64, min: 100, whole: 4, rule: rAPIToken},
	{prefix: "p8e-", body: csAlnum, min: 32, max: 32, rule: rAPIToken},
	{prefix: "LTAI", body: csAlnum, min: 20, max: 20, rule: rAPIToken},
	{prefix: "ABSK", body: csB64, min: 109, rule: rAPIToken},
	{prefix: "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t", body: csB64, rule: rAPIToken, exact: true},
	{prefix: "4b1d", body: csAlnum, min: 38, max: 38, rule: rAPIToken},
	{prefix: "CLOJARS_", fold: true, body: csAlnum, min: 60, rule: rAPIToken},
	{prefix: "v1.0-", body: csHexDash, min: 171, max: 171, rule: rAPIToken},
	{prefix: "dapi", body: csHex, min: 32, max: 32, rule: rAPIToken},
	{prefix: "doo_v1_", body: csHex, min: 64, max: 64, rule: rAPIToken},
	{prefix: "dop_v1_", body: csHex, min: 64, max: 64, rule: rAPIToken},
	{prefix: "dor_v1_", body: csHex, min: 64, max: 64, rule: rAPIToken},
	{prefix: "dp.", body: csTokDot, min: 40, rule: rAPIToken},
	{prefix: "duffel_", body: csTokDot, min: 45, rule: rAPIToken},
	{prefix: "dt0c01.", body: csTokDot, min: 89, whole: 4, rule: rAPIToken},
	{prefix: "EZAK", body: csAlnum, min: 54, max: 54, rule: rAPIToken},
	{prefix: "EZTK", body: csAlnum, min: 54, max: 54, rule: rAPIToken},
	{prefix: "EAAA", body: csTok, min: 22, max: 60, rule: rAPIToken},
	{prefix: "EAA", body: csAlnum, min: 100, whole: 4, rule: rAPIToken},
	{prefix: "FLWSECK_TEST-", body: csHexDash, min: 12, rule: rAPIToken, ent: 2.5},
	{prefix: "FLWPUBK_TEST-", body: csHexDash, min: 12, rule: rAPIToken, ent: 2.5},
	{prefix: "FLWSECK-", body: csHexDash, min: 12, rule: rAPIToken, ent: 2.5},
	{prefix: "FLWPUBK-", body: csHexDash, min: 12, rule: rAPIToken, ent: 2.5},
	{prefix: "fo1_", body: csTok, min: 43, max: 43, whole: 4, rule: rAPIToken},
	{prefix: "fm1", body: csB64Tok, min: 100, whole: 4, rule: rAPIToken},
	{prefix: "fm2_", body: csB64, min: 100, whole: 4, rule: rAPIToken},
	{prefix: "fio-u-", body: csTokDot, min: 64, rule: rAPIToken},
	{prefix: "glc_", fold: true, body: csB64, min: 32, rule: rAPIToken},
	{prefix: "glsa_", fold: true, body: csTok, min: 41, max: 41, rule: rAPIToken},
	{prefix: "eyJrIjoi", fold: true, body: csB64, min: 70, rule: rAPIToken},
	{prefix: "pat.", body: csTokDot, min: 66, rule: rAPIToken},
	{prefix: "sat.", body: csTokDot, min: 66, rule: rAPIToken},
	{prefix: "HRKU-AA", body: csTok, min: 58, max: 58, whole: 4, rule: rAPIToken},
	{prefix: "ico-", body: csAlnum, min: 32, max: 32, rule: rAPIToken},
	{prefix: "s-s4t2", body: csTok, min: 67, max: 67, rule: rAPIToken},
	{prefix: "lin_api_", body: csAlnum, min: 40, rule: rAPIToken},
	{prefix: "npm_", fold: true, body: csAlnum, min: 36, max: 36, rule: rAPIToken},
	{prefix: "API-", body: csUpAlnum, min: 26, max: 26, rule: rAPIToken},
	{prefix: "sha256~", body: csTok, min: 43, max: 43, whole: 3.5, rule: rAPIToken},
	{prefix: "pplx-", body: csAlnum, min: 48, max: 48, whole: 4, rule: rAPIToken},
	{prefix: "pscale_", fold: true, body: csTokDot, min: 34, rule: rAPIToken},
	{prefix: "PMAK-", body: csHexDash, min: 59, max: 59, rule: rAPIToken},
	{prefix: "pnu_", body: csAlnum, min: 36, max: 36, rule: rAPIToken},
	{prefix: "pul-", body: csHex, min: 40, max: 40, rule: rAPIToken},
	{prefix: "pypi-AgEIcHlwaS5vcmc", body: csTok, min: 50, rule: rAPIToken, exact: true},
	{prefix: "rdme_", body: csAlnum, min: 70, max: 70, rule: rAPIToken},
	{prefix: "rubygems_", body: csHex, min: 48, max: 48, rule: rAPIToken},
	{prefix: "tk-us-", body: csTok, min: 48, max: 48, rule: rAPIToken},
	{prefix: "SG.", fold: true, body: csTokDot, min: 66, max: 66, rule: rAPIToken},
	{prefix: "xkeysib-", body: csTok, min: 81, max: 81, rule: rAPIToken},
	{prefix: "sntryu_", body: csHex, min: 64, max: 64, whole: 3.5, rule: rAPIToken},
	{prefix: "sm_aat_", body: csAlnum, min: 16, max: 16, rule: rAPIToken},
	{prefix: "sm_pat_", body: csAlnum, min: 16, max: 16, rule: rAPIToken},
	{prefix: "sm_sat_", body: csAlnum, min: 16, max: 16, rule: rAPIToken},
	{prefix: "shippo_", body: csTok, min: 45, max: 45, rule: rAPIToken},
	{prefix: "shpat_", body: csHex, min: 32, rule: rAPIToken},
	{prefix: "shpca_", body: csHex, min: 32, rule: rAPIToken},
	{prefix: "shppa_", body: csHex, min: 32, rule: rAPIToken},
	{prefix: "shpss_", body: csHex, min: 32, rule: rAPIToken},
	{prefix: "sq0atp-", body: csTok, min: 22, max: 60, rule: rAPIToken},
	{prefix: "sq0csp-", body: csTok, min: 40, max: 43, rule: rAPIToken},
	{prefix: "SK", body: csHex, min: 32, rule: rAPIToken},
	{prefix: "hvb.", body: csTok, min: 138, whole: 4, rule: rVault},
	{prefix: "hvs.", body: csTok, min: 90, max: 120, whole: 3.5, rule: rVault},
	{prefix: "A3-", body: csUpDash, min: 33, whole: 3.8, rule: rAPIToken},
	{prefix: "gsk_", body: csAlnum, min: 52, max: 52, rule: rGroq},                       // Groq
	{prefix: "vcp_", body: csAlnum, min: 24, rule: rVercel},                              // Vercel personal token
	{prefix: "vci_", body: csAlnum, min: 24, rule: rVercel},                              // Vercel integration token
	{prefix: "vca_", body: csAlnum, min: 24, rule: rVercel},                              // Vercel app access token
	{prefix: "vcr_", body: csAlnum, min: 24, rule: rVercel},                              // Vercel app refresh token
	{prefix: "vck_", body: csAlnum, min: 24, rule: rVercel},                              // Vercel API key
	{prefix: "oy2", body: csLoAlnum, min: 43, max: 43, rule: rNuGet},                     // NuGet API key
	{prefix: "s.", body: csAlnum, min: 24, max: 24, rule: rVault, ent: 3.5, short: true}, // Vault legacy service token
}

var gitlabPrefixes = [...]string{"glpat-", "glcbt-", "glffct-", "glft-", "glimt-", "glagent-", "gloas-", "glptt-", "glrt-", "glsoat-", "gldt-"}

// vendorIndex lists, per first byte (folded to lower case), the entries
// whose prefix starts with it.
var vendorIndex [256][]int

// vendorSecond has bit b1<<8|lower(b2) set when an entry of
// vendorIndex[b1] has the second byte b2: most runs fail it at once.
var vendorSecond [1 << 16 / 64]uint64

func setVendorSecond(b1, b2 byte) {
	k := uint16(b1)<<8 | uint16(lower(b2))
	vendorSecond[k/64] |= 1 << (k % 64)
}

func init() {
	for _, p := range gitlabPrefixes {
		vendorTokens = append(vendorTokens, vendorToken{prefix: p, body: csTok, min: 20, rule: rGitLab})
	}
	for i, v := range vendorTokens {
		b := v.prefix[0]
		vendorIndex[b] = append(vendorIndex[b], i)
		setVendorSecond(b, v.prefix[1])
		if v.fold && lower(b) != b {
			vendorIndex[lower(b)] = append(vendorIndex[lower(b)], i)
			setVendorSecond(lower(b), v.prefix[1])
		}
		if d := &ruleDefs[v.rule]; d.decide < len(v.prefix)+max(v.min, v.max)+2 {
			d.decide = len(v.prefix) + max(v.min, v.max) + 2
		}
	}
	ruleDefs[rAPIToken].decide = max(ruleDefs[rAPIToken].decide, sentryDecide+1)
}

// vendorPair reports whether a vendor prefix starts with b1 and, folded
// to lower case, b2.
func vendorPair(b1, b2 byte) bool {
	k := uint16(b1)<<8 | uint16(lower(b2))
	return vendorSecond[k/64]&(1<<(k%64)) != 0
}

// tokenVendor checks the vendor prefixes that start with s[i]. A run
// that continues base64 text or a URL path ('+' or '/' before it) is part
// of something else.
func (c *ctx) tokenVendor(s string, i int) {
	if i > 0 && (s[i-1] == '+' || s[i-1] == '/') {
		return
	}
	t := s[i:]
	if len(t) < 2 {
		return
	}
	if !vendorPair(t[0], t[1]) {
		return
	}
	for _, k := range vendorIndex[s[i]] {
		v := &vendorTokens[k]
		if len(t) < len(v.prefix)+v.min || lower(t[1]) != lower(v.prefix[1]) {
			continue
		}
		if t[:len(v.prefix)] != v.prefix && (!v.fold || !strings.EqualFold(t[:len(v.prefix)], v.prefix)) {
			continue
		}
		if v.short && i > 0 && s[i-1] == '.' {
			continue
		}
		n := v.body.span(t, len(v.prefix))
		if dotted(s, i, i+len(v.prefix)+n) {
			continue
		}
		body := t[len(v.prefix):]
		if n >= v.min && (v.max == 0 || n <= v.max) && (v.exact || v.random(body[:v.min])) &&
			(v.whole == 0 || entropy(t[:len(v.prefix)+min(n, max(v.min, v.max))]) >= v.whole) {
			c.addTail(v.rule, i, i+len(v.prefix)+n, tailSet, v.body)
			return
		}
	}
}

// dotted reports whether s[i:end] is a segment of a dotted name, between
// a '.' and a '.' that a letter or digit follows: a file name with a
// content hash (video_box.ico-7a38….png), a host name, not a token.
func dotted(s string, i, end int) bool {
	return i > 0 && s[i-1] == '.' && end+1 < len(s) && s[end] == '.' && isAlnum(s[end+1])
}

// random reports whether the start of a body looks random rather than a
// placeholder or a word.
func (v *vendorToken) random(body string) bool {
	ent := v.ent
	if ent == 0 {
		ent = 3
	}
	return entropy(body) >= ent && !patterned(body) && (v.rule != rHuggingFace || mixedCase(body)) && (!v.short || mixed(body))
}

// patterned reports whether s holds five equal bytes in a row ("xxxxx")
// or five ascending ones ("12345", "abcde"): the marks of a placeholder.
// Random tokens of 100 bytes or less hold either with a chance well below
// one in a thousand, even in hex.
func patterned(s string) bool {
	eq, up := 1, 1
	for i := 1; i < len(s); i++ {
		eq, up = next(eq, s[i] == s[i-1]), next(up, s[i] == s[i-1]+1)
		if eq == 5 || up == 5 {
			return true
		}
	}
	return false
}

func next(n int, ok bool) int {
	if ok {
		return n + 1
	}
	return 1
}

// mixedCase reports whether at least a quarter of s is upper case and a
// quarter lower case, as in random letters and not in identifiers.
func mixedCase(s string) bool {
	up, lo := 0, 0
	for i := 0; i < len(s); i++ {
		switch k := class[s[i]]; {
		case k&cUpper != 0:
			up++
		case k&cLower != 0:
			lo++
		}
	}
	return up*4 >= len(s) && lo*4 >= len(s)
}
