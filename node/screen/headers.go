package screen

import "strings"

// authNames are the HTTP headers that carry credentials, lower-cased.
// "authorization" counts anywhere; the others only inside a header
// option (-H "Token: ...") or a quoted string, where they are headers
// rather than any configuration key.
var authNames = []string{
	"authorization", "proxy-authorization", "api-token", "apikey", "api-key", "x-api-key",
	"token", "x-auth-token", "private-token", "x-access-token", "access-token", "x-token",
}

// findAuthHeaders finds credentials in HTTP headers, whatever the scheme
// (Authorization: Basic ..., Bearer ..., Token ..., Api-Token ..., or
// none), and in curl's -u/--user option. The span is the credential.
func findAuthHeaders(c *ctx, s string) {
	for i := 0; ; {
		k := strings.IndexByte(s[i:], ':')
		if k < 0 {
			break
		}
		colon := i + k
		i = colon + 1
		if v0, v1 := authHeaderValue(s, colon); v1 > v0 {
			c.addTail(rAuthHeader, v0, v1, tailSet, csCred)
			i = v1
		}
	}
	findCurlUser(c, s)
}

// authHeaderValue returns the credential of the header whose name ends at
// the colon, or an empty span.
func authHeaderValue(s string, colon int) (int, int) {
	st := colon
	for st > 0 && colon-st < 24 && (isTok(s[st-1])) {
		st--
	}
	name := s[st:colon]
	known := false
	for _, n := range authNames {
		if strings.EqualFold(name, n) {
			known = n == "authorization" || n == "proxy-authorization" || headerContext(s, st)
			break
		}
	}
	if !known {
		return 0, 0
	}
	i := colon + 1
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	v0 := i
	if w := runOf(s, i, cTok); w-i >= 4 && w-i <= 20 && w+1 < len(s) && s[w] == ' ' && s[w+1] != ' ' && isAlpha(s[i]) {
		v0 = w + 1 // a scheme: Basic, Bearer, Token, Api-Token, Digest...
	}
	v1 := v0 + csCred.span(s, v0)
	if v1-v0 < 8 || placeholder(s[v0:v1]) || !credLike(s[v0:v1]) {
		return 0, 0
	}
	return v0, v1
}

var csCred = chars("a-zA-Z0-9_=~@.+/-")

// csVisible is every byte but white space and control bytes.
var csVisible = func() *charset {
	var c charset
	for b := 0x21; b < 0x100; b++ {
		c[b] = b != 0x7f
	}
	return &c
}()

// curlDecide is how much of a -u value decides whether it is a credential.
const curlDecide = 64

// credLike reports whether v has the mix of a credential: a digit, or
// both cases, and no long run of lower-case letters (a word).
func credLike(v string) bool {
	classes, _ := charClasses(v)
	return classes&cDigit != 0 || classes&(cUpper|cLower) == cUpper|cLower && entropy(v) >= 3
}

// headerContext reports whether the name at st is a header given on a
// command line or in a quoted string: -H "Name:", --header 'Name:'.
func headerContext(s string, st int) bool {
	j := st
	if j > 0 && (s[j-1] == '"' || s[j-1] == '\'') {
		j--
	}
	for j > 0 && (s[j-1] == ' ' || s[j-1] == '=') {
		j--
	}
	return strings.HasSuffix(s[:j], "-H") || strings.HasSuffix(strings.ToLower(s[max(0, j-8):j]), "header")
}

// findCurlUser finds the user:password of curl's -u / --user option.
func findCurlUser(c *ctx, s string) {
	for _, opt := range [...]string{" -u", " --user"} {
		for i := 0; ; {
			k := strings.Index(s[i:], opt)
			if k < 0 {
				break
			}
			v0 := i + k + len(opt)
			i = v0
			if v0 >= len(s) || (s[v0] != ' ' && s[v0] != '=') {
				continue
			}
			for v0 < len(s) && (s[v0] == ' ' || s[v0] == '=') {
				v0++
			}
			v1 := v0 + csVisible.span(s, v0)
			if curlCred(s[v0:min(v1, v0+curlDecide)]) {
				c.addTail(rAuthHeader, v0, v1, tailSet, csVisible)
			}
		}
	}
}

// curlCred reports whether a -u value is a user and a password (or a key
// as the user) rather than a variable or a uid:gid.
func curlCred(v string) bool {
	v = strings.Trim(v, `"'{}`)
	u, p, ok := strings.Cut(v, ":")
	if !ok || len(v) < 6 {
		return false
	}
	p = strings.Trim(p, `"'{}`)
	if p == "" {
		p = u
	}
	classes, n := charClasses(p)
	return len(p) >= 6 && !placeholder(p) && classes&(cUpper|cLower) != 0 && n >= 2
}

// webhookHosts are the hosts of incoming-webhook URLs, whose path is the
// credential, and the path each URL must continue with.
var webhookHosts = []struct{ host, path string }{
	{"hooks.slack.com/", ""},
	{".webhook.office.com/", "webhookb2/"},
	{"discord.com/api/webhooks/", ""},
	{"discordapp.com/api/webhooks/", ""},
}

// findWebhooks finds Slack, Teams and Discord incoming-webhook URLs.
func findWebhooks(c *ctx, s string) {
	for _, h := range webhookHosts {
		for i := 0; ; {
			k := indexByLast(s[i:], h.host) // every host ends in '/'
			if k < 0 {
				break
			}
			at := i + k
			i = at + len(h.host)
			if !strings.HasPrefix(s[i:], h.path) {
				continue
			}
			end := urlEnd(s, i)
			if end-i-len(h.path) < 24 {
				continue
			}
			start := at
			for start > 0 && (has(s[start-1], cDomain) || s[start-1] == '/' || s[start-1] == ':') && at-start < 80 {
				start--
			}
			c.add(rWebhook, start, end)
			i = end
		}
	}
}
