package screen

import (
	"net/netip"
	"strings"
)

// fileExts are "TLDs" that make user@host.ext a file name, not an
// address (logo@2x.png).
var fileExts = map[string]bool{
	"png": true, "jpg": true, "jpeg": true, "gif": true, "svg": true, "webp": true, "ico": true,
	"js": true, "ts": true, "css": true, "py": true, "go": true, "rs": true, "java": true,
	"json": true, "yaml": true, "yml": true, "txt": true, "md": true, "html": true, "pdf": true,
	"zip": true, "gz": true, "tar": true, "mp4": true, "mp3": true, "wasm": true, "lock": true,
}

// findEmails finds addresses local@domain.tld. It skips ssh remotes
// (git@github.com:org/repo), package pins (pkg@1.2.3) and file names
// with scale suffixes (icon@2x.png).
func findEmails(c *ctx, s string) {
	for i := 0; ; {
		k := strings.IndexByte(s[i:], '@')
		if k < 0 {
			return
		}
		at := i + k
		i = at + 1
		start := at
		for start > 0 && at-start < 64 && (isAlnum(s[start-1]) || strings.IndexByte("._%+-", s[start-1]) >= 0) {
			start--
		}
		for start < at && !isAlnum(s[start]) {
			start++
		}
		if start == at {
			continue
		}
		if end, ok := emailDomain(s, at+1); ok {
			c.add(rEmail, start, end)
			i = end
		}
	}
}

// emailDomain checks the domain starting at i and returns its end.
func emailDomain(s string, i int) (int, bool) {
	end := i
	for end < len(s) && end-i < 128 && has(s[end], cDomain) {
		end++
	}
	for end > i && (s[end-1] == '.' || s[end-1] == '-') {
		end--
	}
	d := s[i:end]
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || strings.Contains(d, "..") || !isAlnum(d[0]) {
		return 0, false
	}
	tld := d[dot+1:]
	if len(tld) < 2 || len(tld) > 24 || !allAlpha(tld) || fileExts[strings.ToLower(tld)] {
		return 0, false
	}
	if end < len(s) && s[end] == ':' && end+1 < len(s) && !isDigit(s[end+1]) && s[end+1] != ' ' {
		return 0, false // ssh remote: git@host:org/repo
	}
	return end, true
}

func allAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) {
			return false
		}
	}
	return true
}

// findIPs finds IPv4 and IPv6 addresses, leaving out the unspecified,
// loopback and broadcast addresses, netmasks, and dotted numbers that are
// part of longer sequences (OIDs, versions like 1.2.3.4.5).
func findIPs(c *ctx, s string) {
	for i := 0; i < len(s); {
		if i+minIP <= len(s) && !ipByte(s[i+minIP-1]) {
			i += minIP // every run that starts before that byte is too short
			continue
		}
		b := s[i]
		if !has(b, cHex) && b != ':' {
			i++
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.' || s[i-1] == ':' || s[i-1] == '_') {
			i++
			continue
		}
		end := i
		for end < len(s) && ipByte(s[end]) {
			end++
		}
		if end-i < minIP { // too short for any address (see ipLike)
			i = max(end, i+1)
			continue
		}
		if c := strings.IndexByte(s[i:end], ':'); c > 0 && strings.Count(s[i:i+c], ".") == 3 {
			end = i + c // IPv4 with a port
		}
		for end > i && (s[end-1] == '.' || s[end-1] == ':') {
			end--
		}
		if ipLike(s, i, end) && !cidr(s, end) {
			c.add(rIP, i, end)
		}
		i = max(end, i+1)
	}
}

// minIP is the length of the shortest address ipLike accepts (1.2.3.4).
const minIP = 7

// ipByte reports the bytes of an address.
func ipByte(b byte) bool { return has(b, cHex) || b == '.' || b == ':' }

func ipLike(s string, i, end int) bool {
	if end-i < minIP || end-i > 45 || (end < len(s) && (isAlnum(s[end]) || s[end] == '_' || (s[end] == ':' && !strings.Contains(s[i:end], ".")))) {
		return false
	}
	t := s[i:end]
	colons := strings.Count(t, ":")
	if colons == 1 || (colons == 0 && strings.Count(t, ".") != 3) || (colons > 0 && colons < 3) {
		return false
	}
	if colons == 0 && !allDigitsDots(t) {
		return false
	}
	a, err := netip.ParseAddr(t)
	if err != nil || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() {
		return false
	}
	if a.Is4() {
		b := a.As4()
		return b[0] != 255 && b[0] != 0
	}
	return hasDigit(t)
}

func allDigitsDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// cidr reports whether the address ending at end is the start of a CIDR
// prefix ("10.0.0.0/8"): a network, not a person's address.
func cidr(s string, end int) bool {
	return end+1 < len(s) && s[end] == '/' && isDigit(s[end+1])
}
