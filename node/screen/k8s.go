package screen

import "strings"

// k8sWindow is how far apart the "kind: Secret" line, the data: line and
// its values may be in a Kubernetes Secret manifest: everything is decided
// within k8sWindow bytes of the first of the two keys, so that whole and
// chunked scans agree.
const k8sWindow = 220

// k8sNear is how far before a data: line a "kind: Secret" line is looked
// for: within the left context that a Stream keeps (streamContext).
const k8sNear = 48

// findK8sSecrets finds the data: and stringData: blocks of Kubernetes
// Secret manifests, with "kind: Secret" before or after them and not
// across a "---" separator: base64 values of 10 bytes or more under
// data:, values that are not placeholders under stringData:. The span
// runs from the data: key to the end of the last value; when the kind:
// line is further than k8sNear bytes before the data: key, from the kind:
// line (a Stream must see the key its decision rests on).
func findK8sSecrets(c *ctx, s string) {
	nk, nd := nextAt(s, 0, "ind:"), nextAt(s, 0, "ata:")
	for nk < len(s) || nd < len(s) {
		p := min(nk, nd) - 1 // the 'k' of kind: or the 'd' of data:
		if nk < nd {
			nk = nextAt(s, nk+4, "ind:")
		} else {
			nd = nextAt(s, nd+4, "ata:")
		}
		if p >= 6 && s[p] == 'D' && s[p-6:p] == "string" {
			p -= 6
		}
		if p < 0 || !lineStart(s, p) {
			continue
		}
		w := s[p:min(len(s), p+k8sWindow)]
		switch {
		case strings.HasPrefix(w, "kind:"):
			if d := dataLine(w); d > k8sNear && secretKind(w[5:]) {
				c.k8sBlock(s, w, p, d)
			}
		case strings.HasPrefix(w, "data:") || strings.HasPrefix(w, "stringData:"):
			if kindBefore(s[max(0, p-k8sNear):p]) || kindAfter(w) {
				c.k8sBlock(s, w, p, 0)
			}
		}
	}
}

// nextAt returns where the next sub starts in s from i, or len(s).
func nextAt(s string, i int, sub string) int {
	if k := indexByLast(s[i:], sub); k >= 0 {
		return i + k
	}
	return len(s)
}

// indexByLast is strings.Index for a short sub whose last byte is rarer
// in text than its first (a ':' or '/' after letters): it looks for that
// byte and then compares what comes before it.
func indexByLast(s, sub string) int {
	last := sub[len(sub)-1]
	for j := len(sub) - 1; j < len(s); j++ {
		k := strings.IndexByte(s[j:], last)
		if k < 0 {
			break
		}
		j += k
		if s[j+1-len(sub):j+1] == sub {
			return j + 1 - len(sub)
		}
	}
	return -1
}

// kindBefore reports whether b holds a "kind: Secret" line that no
// document separator follows.
func kindBefore(b string) bool {
	k := strings.LastIndex(b, "kind:")
	return k >= 0 && lineStart(b, k) && secretKind(b[k+5:]) && !strings.Contains(b[k:], "\n---")
}

// lineStart reports whether s[p:] starts a line, after indentation.
func lineStart(s string, p int) bool {
	for p > 0 && (s[p-1] == ' ' || s[p-1] == '\t') {
		p--
	}
	return p == 0 || s[p-1] == '\n'
}

// secretKind reports whether a kind: value is Secret (not ExternalSecret).
func secretKind(v string) bool {
	v = strings.TrimLeft(v, " \t\"'")
	return len(v) >= 6 && strings.EqualFold(v[:6], "secret") && (len(v) == 6 || !isAlnum(v[6]))
}

// dataLine returns where the first data: or stringData: line after the
// first line of w starts, or 0; a document separator ends the search.
func dataLine(w string) int {
	if !strings.Contains(w, "ata:") {
		return 0
	}
	for j := strings.IndexByte(w, '\n'); j >= 0 && j+1 < len(w); {
		line := w[j+1:]
		k := len(line) - len(strings.TrimLeft(line, " \t"))
		switch t := line[k:]; {
		case strings.HasPrefix(t, "---"):
			return 0
		case strings.HasPrefix(t, "data:") || strings.HasPrefix(t, "stringData:"):
			return j + 1 + k
		}
		n := strings.IndexByte(line, '\n')
		if n < 0 {
			return 0
		}
		j += 1 + n
	}
	return 0
}

// kindAfter reports whether a "kind: Secret" line follows in w, before a
// document separator.
func kindAfter(w string) bool {
	if !strings.Contains(w, "kind:") {
		return false
	}
	for j := strings.IndexByte(w, '\n'); j >= 0 && j+1 < len(w); {
		line := w[j+1:]
		t := strings.TrimLeft(line, " \t")
		if strings.HasPrefix(t, "---") {
			return false
		}
		if strings.HasPrefix(t, "kind:") {
			return secretKind(t[5:])
		}
		n := strings.IndexByte(line, '\n')
		if n < 0 {
			return false
		}
		j += 1 + n
	}
	return false
}

// k8sBlock adds the span from p to the end of the last secret value of
// the data: (or stringData:) block whose key starts at w[d:], w being
// s[p:p+k8sWindow]. A value on a line that ends within w is decided on
// the whole line; a base64 value that runs past the end of w is decided
// on what w holds of it and runs to its end. Block scalars (key: | and
// key: >) take the value on the next line.
func (c *ctx) k8sBlock(s, w string, p, d int) {
	str := strings.HasPrefix(w[d:], "string")
	ind := d - (strings.LastIndexByte(w[:d], '\n') + 1)
	nl := strings.IndexByte(w[d:], '\n')
	last, tail := 0, tailStop
	block := false
	for j := d + nl + 1; nl >= 0 && j < len(w); {
		end := len(w)
		if n := strings.IndexByte(w[j:], '\n'); n >= 0 {
			end = j + n
		}
		line := w[j:end]
		t := strings.TrimLeft(line, " \t")
		if len(line)-len(t) <= ind || strings.TrimSpace(t) == "" {
			break
		}
		off := p + end - len(t)
		cut := end == len(w) && p+end < len(s) // the line goes on past w
		v0, v1, ok := 0, len(strings.TrimRight(t, " \t\r")), block
		if !block {
			v0, v1, block, ok = k8sEntry(t)
		}
		if ok && k8sValue(t[v0:v1], str, cut) {
			last = off + v1
			if cut {
				last, tail = last+csB64.span(s, last), tailSet
			}
		}
		if ok {
			block = false
		}
		j = end + 1
	}
	if last > 0 {
		c.addTail(rK8sSecret, p, last, tail, csB64)
	}
}

// k8sEntry splits a "key: value" line and returns the value's span, or
// block when the value is a block scalar on the next lines.
func k8sEntry(t string) (v0, v1 int, block, ok bool) {
	k := csK8sKey.span(t, 0)
	if k == 0 || k >= len(t) || t[k] != ':' {
		return 0, 0, false, false
	}
	v0 = k + 1
	for v0 < len(t) && (t[v0] == ' ' || t[v0] == '\t' || t[v0] == '"' || t[v0] == '\'') {
		v0++
	}
	v1 = len(strings.TrimRight(t, " \t\r\"'"))
	if v0 < v1 && (t[v0] == '|' || t[v0] == '>') && v1-v0 <= 2 {
		return 0, 0, true, false
	}
	return v0, v1, false, v0 < v1
}

// k8sValue reports whether v is a secret value: base64 of 10 bytes or
// more under data: (cut: v is only the start of the value), a value that
// is not a placeholder under stringData:.
func k8sValue(v string, str, cut bool) bool {
	if len(v) < 8 {
		return false
	}
	if str {
		return !cut && !placeholder(v)
	}
	n := csB64Std.span(v, 0)
	for n < len(v) && v[n] == '=' {
		n++
	}
	return n == len(v) && len(v) >= 10 && !patterned(v)
}

var csK8sKey = chars("a-zA-Z0-9_.-")
