package policy

import (
	"github.com/tailscale/hujson"
)

// mfa decodes a grant's "mfa": a duration ("12h": a second factor of any
// kind within that time), or an object
//
//	{"within": "12h", "phishingResistant": true}  // a passkey or security key
//	{"within": "12h", "deviceBound": true}        // a device-bound key only
//
// whose keys are all optional but not all absent.
func (d *decoder) mfa(v *hujson.Value, what string, g *Grant) {
	if _, ok := v.Value.(*hujson.Object); !ok {
		g.MFA, _ = d.duration(v, what)
		return
	}
	var pr, db, any bool
	d.fields(v, what,
		field{"within", func(v *hujson.Value) { g.MFA, _ = d.duration(v, what+".within"); any = true }},
		field{"phishingResistant", func(v *hujson.Value) { pr = d.boolean(v, what+".phishingResistant"); any = true }},
		field{"deviceBound", func(v *hujson.Value) { db = d.boolean(v, what+".deviceBound"); any = true }},
	)
	switch {
	case !any:
		d.errorf(v.StartOffset, `%s is empty; write "mfa": "12h", or an object such as {"within": "12h", "phishingResistant": true}`, what)
	case db:
		g.MFAFactor = FactorDeviceBound
	case pr:
		g.MFAFactor = FactorPhishingResistant
	}
}
