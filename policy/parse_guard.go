package policy

import (
	"net/netip"
	"strings"

	"github.com/tailscale/hujson"
)

// screenActions are the values of a category in a guard's prompts or
// answers.
var screenActions = []string{"off", "flag", "redact", "block"}

// actions decodes {"secrets": "redact", "injection": "block", ...}.
func (d *decoder) actions(v *hujson.Value, what string) Actions {
	var a Actions
	set := func(dst *string, name string) field {
		return field{name, func(v *hujson.Value) { *dst, _ = d.enum(v, what+"."+name, screenActions...) }}
	}
	d.fields(v, what, set(&a.Secrets, "secrets"), set(&a.PII, "pii"), set(&a.Injection, "injection"), set(&a.Links, "links"))
	return a
}

// linkAllow decodes a list of host names, "*.domain" patterns, IP
// addresses and CIDR prefixes.
func (d *decoder) linkAllow(v *hujson.Value, what string) []string {
	return d.strs(v, what, func(s string, el *hujson.Value, w string) bool {
		if !allowedLink(s) {
			d.errorf(el.StartOffset, "%s: %q is not a host name, *.domain, IP address or CIDR prefix", w, s)
			return false
		}
		return true
	})
}

// allowedLink reports whether s is a valid LinkAllow entry.
func allowedLink(s string) bool {
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	host := strings.TrimPrefix(strings.TrimPrefix(s, "*"), ".")
	if host == "" || len(host) > 253 || strings.HasPrefix(host, "-") || strings.Contains(host, "..") {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
