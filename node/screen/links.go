package screen

import (
	"net/netip"
	"strings"
)

// hostSet is the link allowlist.
type hostSet struct {
	exact    []string
	suffixes []string // ".example.com"
	prefixes []netip.Prefix
}

func newHostSet(hosts []string) *hostSet {
	h := &hostSet{}
	for _, x := range hosts {
		x = strings.ToLower(strings.TrimSpace(x))
		if p, err := netip.ParsePrefix(x); err == nil {
			h.prefixes = append(h.prefixes, p.Masked())
			continue
		}
		switch {
		case strings.HasPrefix(x, "*."):
			h.suffixes = append(h.suffixes, x[1:])
		case strings.HasPrefix(x, "."):
			h.suffixes = append(h.suffixes, x)
		case x != "":
			h.exact = append(h.exact, x)
		}
	}
	return h
}

// allowed reports whether host (any case) is on the list.
func (h *hostSet) allowed(host string) bool {
	for _, x := range h.exact {
		if strings.EqualFold(host, x) {
			return true
		}
	}
	for _, x := range h.suffixes {
		if strings.EqualFold(host, x[1:]) ||
			(len(host) > len(x) && strings.EqualFold(host[len(host)-len(x):], x)) {
			return true
		}
	}
	if len(h.prefixes) > 0 {
		if a, err := netip.ParseAddr(host); err == nil {
			for _, p := range h.prefixes {
				if p.Contains(a) {
					return true
				}
			}
		}
	}
	return false
}

// maxLinkText bounds the link text of a markdown link we follow back.
const maxLinkText = 100

// findExfil finds markdown images and links, and HTML images, whose URL
// points at a host outside the allowlist.
func findExfil(c *ctx, s string) {
	for i := 0; ; {
		k := strings.Index(s[i:], "](")
		if k < 0 {
			break
		}
		mid := i + k
		i = mid + 2
		start := strings.LastIndexByte(s[max(0, mid-maxLinkText):mid], '[')
		if start < 0 {
			continue
		}
		start += max(0, mid-maxLinkText)
		if start > 0 && s[start-1] == '!' {
			start--
		}
		if end, ok := c.externalURL(s, mid+2); ok {
			c.add(rExfil, start, closeParen(s, end))
			i = end
		}
	}
	findHTMLImages(c, s)
}

func closeParen(s string, end int) int {
	if end < len(s) && (s[end] == ')' || s[end] == '>') {
		return end + 1
	}
	return end
}

// externalURL checks the URL at s[i:] (optionally in <>) and returns its
// end when its host is not allowed. Relative URLs are not external.
func (c *ctx) externalURL(s string, i int) (int, bool) {
	if i < len(s) && s[i] == '<' {
		i++
	}
	h := i
	switch {
	case hasPrefixFold(s[i:], "https://"):
		h += 8
	case hasPrefixFold(s[i:], "http://"):
		h += 7
	case strings.HasPrefix(s[i:], "//"):
		h += 2
	default:
		return 0, false
	}
	he := h
	for he < len(s) && has(s[he], cDomain) {
		he++
	}
	if he == h || c.allow.allowed(s[h:he]) {
		return 0, false
	}
	return urlEnd(s, he), true
}

func hasPrefixFold(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }

// findHTMLImages finds <img ... src="URL"> with an external URL; the span
// runs from "<img" to the end of the URL.
func findHTMLImages(c *ctx, s string) {
	for i := 0; ; {
		k := indexFold(s[i:], "<img")
		if k < 0 {
			return
		}
		start := i + k
		i = start + 4
		tag := s[i:min(len(s), i+maxLinkText)]
		src := indexFold(tag, "src=")
		if src < 0 {
			continue
		}
		u := i + src + 4
		if u < len(s) && (s[u] == '"' || s[u] == '\'') {
			u++
		}
		if end, ok := c.externalURL(s, u); ok {
			c.add(rExfil, start, end) // to the URL's end: the tag's other attributes stay

			i = end
		}
	}
}

// indexFold is strings.Index for an ASCII lower-case needle, ignoring the
// case of s, without allocating.
func indexFold(s, needle string) int {
	for i := 0; i+len(needle) <= len(s); i++ {
		k := strings.IndexByte(s[i:], needle[0])
		if u := strings.IndexByte(s[i:], needle[0]-32); u >= 0 && (k < 0 || u < k) {
			k = u
		}
		if k < 0 {
			return -1
		}
		i += k
		if i+len(needle) <= len(s) && strings.EqualFold(s[i:i+len(needle)], needle) {
			return i
		}
	}
	return -1
}
