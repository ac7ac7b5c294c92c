package policy

import (
	"fmt"
	"time"
)

// Factor is the kind of second factor a grant demands, by the RFC 8176
// method (amr) the caller's last MFA was proved with.
type Factor string

const (
	// FactorAny accepts any second factor (the zero value).
	FactorAny Factor = ""
	// FactorPhishingResistant accepts a passkey or security key: "hwk"
	// (device-bound) or "swk" (synced passkey). A TOTP code ("otp") or an
	// IdP's bare "mfa" does not do.
	FactorPhishingResistant Factor = "phishing-resistant"
	// FactorDeviceBound accepts only a key that cannot leave its device:
	// "hwk" (a security key, or a platform key that does not sync).
	FactorDeviceBound Factor = "device-bound"
)

// Accepts reports whether a last MFA proved by method meets f.
func (f Factor) Accepts(method string) bool {
	switch f {
	case FactorPhishingResistant:
		return method == "hwk" || method == "swk"
	case FactorDeviceBound:
		return method == "hwk"
	}
	return true
}

// strictness orders factors: a factor accepts every method a stricter
// one accepts.
func (f Factor) strictness() int {
	switch f {
	case FactorPhishingResistant:
		return 1
	case FactorDeviceBound:
		return 2
	}
	return 0
}

// Describe names the factor for people: "a passkey or security key".
func (f Factor) Describe() string {
	switch f {
	case FactorPhishingResistant:
		return "a passkey or security key"
	case FactorDeviceBound:
		return "a device-bound security key"
	}
	return "a second factor"
}

// MethodName names an RFC 8176 method for people: "otp" is "a one-time
// code".
func MethodName(method string) string {
	switch method {
	case "hwk":
		return "a device-bound key"
	case "swk":
		return "a synced passkey"
	case "otp":
		return "a one-time code"
	case "":
		return "an unrecorded factor"
	}
	return "a factor the identity provider did not name (" + method + ")"
}

// Meets reports whether a caller whose last MFA is mfaAge old (negative:
// never), proved by method, meets g's requirement.
func (g *GrantRule) Meets(mfaAge time.Duration, method string) bool {
	if g.MFA == 0 && g.MFAFactor == FactorAny {
		return true
	}
	return mfaAge >= 0 && (g.MFA == 0 || mfaAge <= time.Duration(g.MFA)) && g.MFAFactor.Accepts(method)
}

// implies reports whether every caller meeting b (MFA window and factor)
// also meets a, so that b can never be chosen after a in a chain.
func implies(b, a *Grant) bool {
	window := a.MFA == 0 || (b.MFA != 0 && b.MFA <= a.MFA)
	return window && b.MFAFactor.strictness() >= a.MFAFactor.strictness()
}

// demands says what g asks of the caller's MFA, for explanations:
// "mfa within 12h", "a passkey or security key within 12h".
func (g *Grant) demands() string {
	switch {
	case g.MFAFactor != FactorAny && g.MFA != 0:
		return "mfa within " + g.MFA.Short() + " by " + g.MFAFactor.Describe()
	case g.MFAFactor != FactorAny:
		return "mfa by " + g.MFAFactor.Describe()
	case g.MFA != 0:
		return "mfa within " + g.MFA.Short()
	}
	return ""
}

// unmet says when a request passes g by, for explanations: "the last MFA
// is older than 12h", "… or not by a passkey or security key".
func (g *Grant) unmet() string {
	switch {
	case g.MFAFactor != FactorAny && g.MFA != 0:
		return "the last MFA is older than " + g.MFA.Short() + " or not by " + g.MFAFactor.Describe()
	case g.MFAFactor != FactorAny:
		return "the last MFA was not by " + g.MFAFactor.Describe()
	}
	return "the last MFA is older than " + g.MFA.Short()
}

// checkFactor narrows an allowing explanation to the grants whose factor
// Who's last MFA meets; with none, the target is denied, with a note that
// says what to do.
func (e *Explanation) checkFactor() {
	m := e.Who.MFAMethod
	if m == "" {
		return
	}
	for i, g := range e.Chain {
		if g.MFAFactor.Accepts(m) {
			e.Chain, e.Grant = e.Chain[i:], g
			return
		}
	}
	g := e.Chain[len(e.Chain)-1]
	e.Allowed, e.Grant = false, nil
	e.Notes = append(e.Notes, fmt.Sprintf("%s (%s) demands %s, and %s's last MFA was by %q: sign in with %s (moat login); a person without one registers it when asked, or an admin resets their MFA",
		g.ID(), e.where(g), g.MFAFactor.Describe(), e.Who.String(), m, g.MFAFactor.Describe()))
}
