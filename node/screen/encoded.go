package screen

// maxDecode bounds how much of one encoded run is decoded and re-scanned.
const maxDecode = 2048

// minEncoded is the shortest run findEncoded decodes.
const minEncoded = 24

// findEncoded finds base64 and hex runs whose decoded text is readable and
// holds an injection phrasing: instructions smuggled past a reader.
// Encoded images, hashes and keys decode to binary and are skipped.
func findEncoded(c *ctx, s string) {
	for i := 0; i < len(s); {
		if i+minEncoded <= len(s) && !has(s[i+minEncoded-1], cB64|cTok) {
			i += minEncoded // every run that starts before that byte is too short
			continue
		}
		if !has(s[i], cB64) {
			i++
			continue
		}
		end := runOf(s, i, cB64|cTok)
		if end-i >= minEncoded && (i == 0 || !has(s[i-1], cB64|cTok)) && c.smuggled(s[i:end]) {
			c.add(rEncoded, i, end)
		}
		i = end
	}
}

// smuggled decodes run as hex or base64 and checks the text it hides.
func (c *ctx) smuggled(run string) bool {
	var ok bool
	if len(run)%2 == 0 && allHex(run) {
		c.dec, ok = hexDecode(c.dec[:0], run[:min(len(run), 2*maxDecode)])
	} else {
		c.dec, ok = b64Decode(c.dec[:0], run[:min(len(run), maxDecode*4/3)])
	}
	if !ok || !readable(c.dec) {
		return false
	}
	c.dnorm.normalize(string(c.dec))
	return containsInjection(c.dnorm.b)
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if class[s[i]]&cHex == 0 {
			return false
		}
	}
	return true
}

func hexDecode(dst []byte, s string) ([]byte, bool) {
	for i := 0; i+1 < len(s); i += 2 {
		dst = append(dst, unhex(s[i])<<4|unhex(s[i+1]))
	}
	return dst, true
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

var b64val [256]int8

func init() {
	for i := range b64val {
		b64val[i] = -1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		b64val[std[i]] = int8(i)
	}
	b64val['-'], b64val['_'] = 62, 63 // URL-safe alphabet
}

// b64Decode decodes standard or URL-safe base64, padded or not.
func b64Decode(dst []byte, s string) ([]byte, bool) {
	var acc uint32
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			break
		}
		v := b64val[s[i]]
		if v < 0 {
			return dst, false
		}
		acc = acc<<6 | uint32(v)
		if n++; n == 4 {
			dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	switch n {
	case 2:
		dst = append(dst, byte(acc>>4))
	case 3:
		dst = append(dst, byte(acc>>10), byte(acc>>2))
	}
	return dst, true
}

// readable reports whether b is mostly printable text: at least 90% of
// its bytes printable ASCII, white space or UTF-8.
func readable(b []byte) bool {
	if len(b) < 12 {
		return false
	}
	bad := 0
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			bad++
		}
	}
	return bad*10 <= len(b)
}
