package screen

import (
	"math"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// minPEMBody is the least a private key block holds between its BEGIN
// and END lines; shorter ones are examples ("...", "<key>").
const minPEMBody = 16

// findPrivateKeys finds PEM private key blocks (RSA, EC, DSA, OpenSSH,
// PKCS#8, encrypted, PGP), from the BEGIN line to the END line, also when
// the newlines are JSON escapes ("\n") as in cloud service-account files.
func findPrivateKeys(c *ctx, s string) {
	for i := 0; ; {
		k := strings.Index(s[i:], "-----BEGIN ")
		if k < 0 {
			return
		}
		start := i + k
		i = start + 11
		hdr := s[i:min(len(s), i+40)]
		e := strings.Index(hdr, "-----")
		if e < 0 || !strings.Contains(hdr[:e], "PRIVATE KEY") {
			continue
		}
		i += e + 5
		var st pemState
		n, ended := st.scan(s[i:])
		i += n
		if !ended || strings.Index(s[i-n:i], "-----") >= minPEMBody {
			c.add(rPrivateKey, start, i)
		}
	}
}

// pemState follows a PEM body, possibly across stream chunks: base64 lines
// (newlines raw or JSON-escaped, headers such as "Proc-Type: 4,ENCRYPTED")
// up to and including the "-----END ...-----" line.
type pemState struct {
	mid    bool  // not at the start of a line
	esc    bool  // the previous byte was a backslash
	inEnd  bool  // inside the END line
	dashes uint8 // '-' bytes seen in a row inside the END line, after its name
	named  bool  // the END line's name has started
}

// scan returns how many bytes of s continue the block and whether the
// block ended in s.
func (p *pemState) scan(s string) (int, bool) {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if p.inEnd {
			switch {
			case b == '-' && p.named:
				if p.dashes++; p.dashes == 5 {
					return i + 1, true
				}
			case b == '-' || b == ' ' || (b >= 'A' && b <= 'Z'):
				p.named = p.named || b != '-'
			default:
				return i, true
			}
			continue
		}
		switch {
		case b == '-' && !p.mid:
			p.inEnd = true
		case b == '\n' || (b == 'n' && p.esc):
			p.mid = false
		case has(b, cB64|cTok) || b == '\r' || b == '\\' || b == ':' || b == ',' || b == ' ':
			p.mid = p.mid || b != '\\'
		default:
			return i, true
		}
		p.esc = b == '\\'
	}
	return len(s), false
}

// findConnStrings finds passwords in URLs, scheme://user:password@host
// (database connection strings, HTTP basic auth, FTP...), for any scheme.
// The span is the password alone: the user and host stay readable. An
// empty password (user:@host) and placeholders are not findings.
func findConnStrings(c *ctx, s string) {
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			return
		}
		at := i + k
		i = at + 3
		if !schemeBefore(s, at) {
			continue
		}
		if p0, p1, ok := userinfoPassword(s, at+3); ok {
			c.addTail(rConnString, p0, p1, tailStop, nil)
		}
	}
}

// schemeBefore reports whether a URL scheme ends at i: a letter, then up
// to 19 letters, digits, '+', '-' or '.', standing alone.
func schemeBefore(s string, i int) bool {
	j := i
	for j > 0 && i-j < 20 && (isAlnum(s[j-1]) || s[j-1] == '+' || s[j-1] == '-' || s[j-1] == '.') {
		j--
	}
	for j < i && !isAlpha(s[j]) { // "-postgres://" or ".http://": the scheme starts at the letter
		j++
	}
	return j < i && (j == 0 || !isAlnum(s[j-1]))
}

// userinfoPassword finds the password of the user:password@ part at s[i:]
// and returns its span.
func userinfoPassword(s string, i int) (int, int, bool) {
	lim := min(len(s), i+130)
	colon, at := -1, -1
	for j := i; j < lim; j++ {
		b := s[j]
		if b <= ' ' || b == '/' || b == '"' || b == '\'' || b == '<' || b == '>' || b == '`' {
			break
		}
		if b == ':' && colon < 0 {
			colon = j
		}
		if b == '@' {
			at = j
		}
	}
	if colon < 0 || at < colon+2 || colon == i {
		return 0, 0, false
	}
	return colon + 1, at, !urlPlaceholder(s[colon+1:at], exampleHost(s[at+1:hostEnd(s, at+1)]))
}

// hostEnd returns where the host that starts at i ends (before a port,
// path, query or the end of the URL).
func hostEnd(s string, i int) int {
	for i < len(s) && (isAlnum(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_') {
		i++
	}
	return i
}

// exampleTLDs are the top-level names reserved for documentation and
// tests (RFC 2606, RFC 6761), and the local host's, which tutorials use.
var exampleTLDs = [...]string{"example", "test", "invalid", "localhost", "local"}

// exampleHost reports whether a URL's host is one that documentation and
// tutorials use: example.com, .org or .net, a name under a reserved
// top-level name, localhost or 127.0.0.1.
func exampleHost(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "127.0.0.1" {
		return true
	}
	dom, tld := "", h
	if k := strings.LastIndexByte(h, '.'); k >= 0 {
		dom, tld = h[:k], h[k+1:]
		dom = dom[strings.LastIndexByte(dom, '.')+1:]
	}
	for _, t := range exampleTLDs {
		if strings.EqualFold(tld, t) {
			return true
		}
	}
	return strings.EqualFold(dom, "example") && (strings.EqualFold(tld, "com") || strings.EqualFold(tld, "org") || strings.EqualFold(tld, "net"))
}

// urlPlaceholder reports whether a password in a URL is a placeholder, as
// in examples and documentation: what placeholder takes for one when it
// has no digit (${DB_PASS}, <password>, supersecret), under four bytes
// (abc), a template's opening (<$%{*[(#), one byte repeated, or a value
// made of placeholder words and filler (enter, with, the, my) with fewer
// than four other bytes (REPLACE_WITH_PASSWORD). Digits count as filler
// only in a URL to an example host (see exampleHost): there pass123 and
// your_secret1 are examples, elsewhere (mongodb://u:mySecret789@db.corp)
// passwords. secretKey456 and compl3xPwd are passwords anywhere.
func urlPlaceholder(v string, example bool) bool {
	digit := strings.ContainsFunc(v, func(r rune) bool { return r < 0x80 && isDigit(byte(r)) })
	if placeholder(v) && !digit {
		return true
	}
	if len(v) < 4 || strings.ContainsAny(v[:1], "<$%{*[(#") || strings.Count(v, v[:1]) == len(v) {
		return true
	}
	if digit && !example {
		return false
	}
	lv := strings.ToLower(v)
	for _, w := range placeholderWords {
		lv = strings.ReplaceAll(lv, w, "")
	}
	for _, w := range [...]string{"enter", "with", "the", "my", "_", "-", "."} {
		lv = strings.ReplaceAll(lv, w, "")
	}
	return len(lv) < 4
}

// urlEnd returns where the URL that continues at i ends.
func urlEnd(s string, i int) int {
	for i < len(s) && !urlStop(s[i]) {
		i++
	}
	return i
}

func urlStop(b byte) bool {
	return b <= ' ' || b == '"' || b == '\'' || b == '`' || b == '<' || b == '>' || b == ')' || b == ']' || b == '}'
}

var placeholderWords = []string{
	"password", "passwd", "pass", "pwd", "secret", "changeme", "example", "test", "your",
	"dummy", "placeholder", "redacted", "xxx", "***", "...", "foo", "bar", "token", "apikey", "api_key",
	"env", "environ", "getenv", "none", "null", "undefined", "todo", "replace", "insert", "here", "fake",
}

// placeholder reports whether a credential value is a placeholder or a
// reference rather than a secret: <...>, ${VAR}, {{x}}, %s, $VAR, "****",
// "your_password", "changeme"...
func placeholder(v string) bool {
	if v == "" || strings.ContainsAny(v[:1], "<$%{*[(#") {
		return true
	}
	if strings.Count(v, v[:1]) == len(v) {
		return true
	}
	var buf [64]byte
	lv := lowerInto(buf[:0], v)
	for _, w := range placeholderWords {
		if len(w)*2 >= len(lv)-4 && strings.Contains(lv, w) {
			return true
		}
	}
	return false
}

// lowerInto returns strings.ToLower(s), in buf when s is ASCII: the values
// placeholder sees are short, so checking one allocates nothing.
func lowerInto(buf []byte, s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
	}
	b := append(buf, s...)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func entropy(s string) float64 {
	var n [256]uint16
	for i := 0; i < len(s); i++ {
		n[s[i]]++
	}
	h := 0.0
	l := float64(len(s))
	for _, k := range n {
		if k > 0 {
			p := float64(k) / l
			h -= p * math.Log2(p)
		}
	}
	return h
}
