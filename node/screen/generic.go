package screen

import "strings"

// secretNames are the endings of identifiers whose values are credentials,
// lower-cased (detect-secrets' keyword detector, narrowed for precision).
var secretNames = []string{
	"apikey", "api_key", "api-key", "secretkey", "secret_key", "secret-key", "accesskey",
	"access_key", "privatekey", "private_key", "signingkey", "signing_key", "encryptionkey",
	"encryption_key", "masterkey", "master_key", "authkey", "auth_key", "secret", "token",
	"password", "passwd", "pwd", "passphrase", "credential", "credentials", "clientsecret",
	"client_secret", "secret_access_key", "session_token", "bearer", "authorization", "creds",
	"private-key",
}

// findGeneric finds high-entropy values assigned to credential-named keys
// in the layouts of configuration files and code: api_key = "...",
// "password": "...", SECRET_TOKEN=..., TOKEN ?= ..., $token .= "...",
// var token string = "...", setProperty("TOKEN", "..."), <token>...</token>.
// The span is the value only.
func findGeneric(c *ctx, s string) {
	for i := 0; i < len(s); {
		sep := nextOf(s, i, genericSeps, csGenericSep)
		if sep == len(s) {
			return
		}
		i = sep + 1
		if !secretName(s, sep) {
			continue
		}
		v0, v1 := valueAt(s, sep+1, s[sep] == '>')
		if v1 > v0 && secretValue(s[v0:min(v1, v0+genericDecide)]) {
			c.add(rGeneric, v0, v1)
			i = v1
		} else if v1-v0 > genericDecide {
			i = v1 // bounds the work on long runs of separators
		}
	}
}

// csGenericSep are the separators between a name and its value.
const genericSeps = "=:>,"

var csGenericSep = chars(genericSeps)

// secretName reports whether the identifier before the separator at sep
// ends in a credential name. Before '=' it skips the operator's other
// bytes (:=, ?=, .=, +=) and a type (var token string =); '>' must close
// an XML start tag and ',' a quoted name, as in setProperty("K", "v").
func secretName(s string, sep int) bool {
	j := sep
	switch s[sep] {
	case '>':
		st := j
		for st > 0 && j-st < 40 && (isTok(s[st-1]) || s[st-1] == '.' || s[st-1] == ':') {
			st--
		}
		return st > 0 && s[st-1] == '<' && credName(s[st:j])
	case ',':
		if j == 0 || (s[j-1] != '"' && s[j-1] != '\'') {
			return false
		}
	case '=':
		for j > 0 && j > sep-3 && strings.IndexByte(":?.+", s[j-1]) >= 0 {
			j--
		}
	}
	for j > 0 && (s[j-1] == ' ' || s[j-1] == '"' || s[j-1] == '\'' || s[j-1] == ':') {
		j--
	}
	st := identStart(s, j)
	if strings.EqualFold(s[st:j], "value") {
		return keyAttrCred(s, st)
	}
	if typeName(s[st:j]) && st > 0 && s[st-1] == ' ' {
		j = st
		for j > 0 && (s[j-1] == ' ' || s[j-1] == ':') {
			j--
		}
		st = identStart(s, j)
	}
	return credName(s[st:j])
}

// keyAttrCred reports whether the attribute before the value= attribute
// starting at st names a credential: key="ClearTextPassword" value="..."
// in .NET appSettings and nuget.config files.
func keyAttrCred(s string, st int) bool {
	j := st
	for j > 0 && s[j-1] == ' ' {
		j--
	}
	if j == 0 || s[j-1] != '"' && s[j-1] != '\'' {
		return false
	}
	q := s[j-1]
	k := strings.LastIndexByte(s[max(0, j-1-48):j-1], q)
	if k < 0 {
		return false
	}
	k += max(0, j-1-48)
	return k >= 4 && strings.EqualFold(s[k-4:k], "key=") && credName(s[k+1:j-1])
}

// typeName reports the types written between a name and its value.
func typeName(id string) bool {
	switch id {
	case "string", "String", "str":
		return true
	}
	return false
}

func identStart(s string, j int) int {
	st := j
	for st > 0 && j-st < 40 && (isTok(s[st-1]) || s[st-1] == '.') {
		st--
	}
	return st
}

// credName reports whether an identifier ends in a credential name.
func credName(id string) bool {
	if len(id) < 3 {
		return false
	}
	for _, n := range secretNames {
		if len(id) >= len(n) && strings.EqualFold(id[len(id)-len(n):], n) {
			return len(id) == len(n) || !isAlpha(id[len(id)-len(n)-1]) || isCamelBoundary(id, len(id)-len(n))
		}
	}
	return false
}

// isCamelBoundary reports whether a name starts a word at id[i]: fooToken,
// ETSYToken.
func isCamelBoundary(id string, i int) bool {
	return id[i] >= 'A' && id[i] <= 'Z' && (id[i-1] >= 'a' && id[i-1] <= 'z' || i+1 < len(id) && id[i+1] >= 'a' && id[i+1] <= 'z')
}

// valueAt returns the value after a separator: optional '=', '>' (for
// "=>" and ":="), spaces (and line breaks after an XML tag), a quote, an
// optional "Bearer " and then the bytes up to the closing quote, space or
// punctuation.
func valueAt(s string, i int, xml bool) (int, int) {
	for i < len(s) && (s[i] == '=' || s[i] == '>' || s[i] == ' ' || s[i] == '\t' || xml && (s[i] == '\n' || s[i] == '\r')) {
		i++
	}
	if i < len(s) && (s[i] == '"' || s[i] == '\'' || s[i] == '`') {
		i++
	}
	if len(s)-i > 7 && strings.EqualFold(s[i:i+7], "bearer ") {
		i += 7
	}
	j := i + genericValueLen(s[i:])
	if j < len(s) && s[j] == '(' { // a function call, not a literal
		return i, i
	}
	return i, j
}

// genericDecide is how much of a value decides whether it is a secret;
// a longer value is redacted to its end, in a stream too (tailGeneric).
const genericDecide = 95

// genericValueLen returns how many bytes of s continue a generic value.
func genericValueLen(s string) int {
	j := 0
	for j < len(s) && s[j] > ' ' && s[j] < 0x7f && strings.IndexByte("\"'`,;)]}<>(", s[j]) < 0 {
		j++
	}
	return j
}

// secretValue reports whether v looks like a random credential rather than
// a word, a reference, a number or a placeholder.
func secretValue(v string) bool {
	if len(v) < 8 || placeholder(v) {
		return false
	}
	classes, n := charClasses(v)
	if classes == cDigit && n == 1 {
		return len(v) >= 16 && entropy(v) >= 2.5 // a numeric id or key
	}
	if len(v) == 17 && v[8] == ':' && allHex(v[:8]) && allHex(v[9:]) {
		return true // user:password of a package registry (Sidekiq Enterprise)
	}
	if len(v) >= 12 && classes == cUpper|cLower && n == 2 {
		return mixedCase(v) && entropy(v) >= 3.5 // random letters, not a camelCase word
	}
	if refLike(v) {
		return false
	}
	switch {
	case len(v) >= 16:
		return n >= 2 && classes&cDigit != 0 && entropy(v) >= 3.2
	case len(v) >= 12:
		return n >= 2 && classes&cDigit != 0 && entropy(v) >= 3.0
	case len(v) >= 10:
		return n >= 3 && entropy(v) >= 3.0
	}
	return n >= 4 && entropy(v) >= 2.75
}

// charClasses returns which of digit/upper/lower/other v has, and how many.
func charClasses(v string) (uint8, int) {
	var k uint8
	other := 0
	for i := 0; i < len(v); i++ {
		c := class[v[i]] & (cDigit | cUpper | cLower)
		if c == 0 {
			other = 1
		}
		k |= c
	}
	n := other
	for _, b := range [...]uint8{cDigit, cUpper, cLower} {
		if k&b != 0 {
			n++
		}
	}
	return k, n
}

// refLike reports values that name something instead of being a secret:
// dotted or snake identifiers (os.environ.KEY, settings.api_key), paths,
// URLs, versions and pure numbers.
func refLike(v string) bool {
	if strings.Contains(v, "://") || strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./") {
		return true
	}
	letters, digits := 0, 0
	for i := 0; i < len(v); i++ {
		switch {
		case isAlpha(v[i]):
			letters++
		case isDigit(v[i]):
			digits++
		case v[i] != '_' && v[i] != '.' && v[i] != '-':
			return false
		}
	}
	return digits == 0 || letters == 0 || (digits <= 2 && strings.ContainsAny(v, "._"))
}

// Bare tokens: a run of base64 or base64url bytes standing alone, with
// no credential name before it, is a secret when it is as long and as
// random as keys are and words, paths, hashes and identifiers are not.
const (
	bareMin = 28
	bareMax = 90 // longer runs are encoded data; the decision fits in genericDecide
)

// findBare finds bare high-entropy tokens.
func findBare(c *ctx, s string) {
	for i := 0; i < len(s); {
		if i+bareMin <= len(s) && !csB64Tok[s[i+bareMin-1]] {
			i += bareMin // every run that starts before that byte is too short
			continue
		}
		if !csB64Tok[s[i]] {
			i++
			continue
		}
		n := csB64Tok.span(s, i)
		if n >= bareMin && n <= bareMax && (i == 0 || !isBareNeighbour(s[i-1])) && (i+n == len(s) || !isBareNeighbour(s[i+n])) && bareRandom(s[i:i+n]) && !c.encodedData(s[i:i+n]) {
			c.addTail(rGeneric, i, i+n, tailStop, nil)
		}
		i += n
	}
}

// isBareNeighbour reports bytes that make a run part of a larger word: a
// path, a URL, a domain or a dotted name.
func isBareNeighbour(b byte) bool {
	return b == '.' || b == '\\' || b == '%' || b == '&' || b == '?' || b == '#' || b == '@' || b == '~'
}

func bareRandom(v string) bool {
	classes, _ := charClasses(v)
	if classes != cDigit|cUpper|cLower || strings.Count(v, "/") > 2 {
		return false
	}
	return entropy(v) >= 4.2 && !patterned(v)
}

// encodedData reports whether a base64 run decodes to text or to DER (a
// public key or a certificate), which are not secrets.
func (c *ctx) encodedData(v string) bool {
	var ok bool
	c.dec, ok = b64Decode(c.dec[:0], v)
	if !ok || len(c.dec) == 0 {
		return false
	}
	if len(c.dec) > 1 && c.dec[0] == 0x30 && (c.dec[1] == 0x82 || c.dec[1] == 0x81 || c.dec[1] < 0x80) {
		return true
	}
	text := 0
	for _, b := range c.dec {
		if b >= 0x20 && b < 0x7f || b == '\n' || b == '\t' {
			text++
		}
	}
	return text*10 >= len(c.dec)*9
}
