package screen

import "strings"

// secretNames are the endings of identifiers whose values are credentials,
// lower-cased (detect-secrets' keyword detector, narrowed for precision).
var secretNames = []string{
	"apikey", "api_key", "api-key", "secretkey", "secret_key", "secret-key", "accesskey",
	"access_key", "privatekey", "private_key", "signingkey", "signing_key", "encryptionkey",
	"encryption_key", "masterkey", "master_key", "authkey", "auth_key", "secret", "token",
	"password", "passwd", "pwd", "passphrase", "credential", "credentials", "clientsecret",
	"client_secret", "secret_access_key", "session_token", "bearer", "authorization",
}

// findGeneric finds high-entropy values assigned to credential-named keys:
// api_key = "...", "password": "...", SECRET_TOKEN=..., Authorization: Bearer ...
// The span is the value only.
func findGeneric(c *ctx, s string) {
	for i := 0; i < len(s); {
		k := strings.IndexAny(s[i:], "=:")
		if k < 0 {
			return
		}
		sep := i + k
		i = sep + 1
		if !secretName(s, sep) {
			continue
		}
		v0, v1 := valueAt(s, sep+1)
		if v1 > v0 && secretValue(s[v0:v1]) {
			c.add(rGeneric, v0, v1)
			i = v1
		}
	}
}

// secretName reports whether the identifier before the separator at sep
// (skipping quotes and spaces) ends in a credential name.
func secretName(s string, sep int) bool {
	j := sep
	for j > 0 && (s[j-1] == ' ' || s[j-1] == '"' || s[j-1] == '\'' || s[j-1] == ':') {
		j--
	}
	st := j
	for st > 0 && j-st < 40 && (isTok(s[st-1]) || s[st-1] == '.') {
		st--
	}
	if j-st < 3 {
		return false
	}
	id := s[st:j]
	for _, n := range secretNames {
		if len(id) >= len(n) && strings.EqualFold(id[len(id)-len(n):], n) {
			return len(id) == len(n) || !isAlpha(id[len(id)-len(n)-1]) || isCamelBoundary(id, len(id)-len(n))
		}
	}
	return false
}

func isCamelBoundary(id string, i int) bool {
	return id[i] >= 'A' && id[i] <= 'Z' && id[i-1] >= 'a' && id[i-1] <= 'z'
}

// valueAt returns the value after a separator: optional '=', '>' (for
// "=>" and ":="), spaces, a quote, an optional "Bearer " and then the
// bytes up to the closing quote, space or punctuation.
func valueAt(s string, i int) (int, int) {
	for i < len(s) && (s[i] == '=' || s[i] == '>' || s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i < len(s) && (s[i] == '"' || s[i] == '\'' || s[i] == '`') {
		i++
	}
	if len(s)-i > 7 && strings.EqualFold(s[i:i+7], "bearer ") {
		i += 7
	}
	j := i
	for j < len(s) && j-i < 200 && s[j] > ' ' && s[j] < 0x7f && strings.IndexByte("\"'`,;)]}<>(", s[j]) < 0 {
		j++
	}
	if j < len(s) && s[j] == '(' { // a function call, not a literal
		return i, i
	}
	return i, j
}

// secretValue reports whether v looks like a random credential rather than
// a word, a reference, a number or a placeholder.
func secretValue(v string) bool {
	if len(v) < 8 || placeholder(v) || refLike(v) {
		return false
	}
	classes, n := charClasses(v)
	switch {
	case len(v) >= 16:
		return n >= 2 && classes&cDigit != 0 && entropy(v) >= 3.2
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
