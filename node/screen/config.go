package screen

import (
	"slices"
	"strconv"

	"github.com/moatmesh/moat/policy"
)

// RuleActions maps rule ids (see Rules) to actions. A rule that is absent
// or mapped to ActionOff does not run.
type RuleActions map[string]Action

// Config is what a Screen is compiled from. The zero Config screens nothing.
type Config struct {
	// Input applies to prompts, before they are forwarded.
	Input RuleActions
	// Output applies to answers, as they stream back.
	Output RuleActions
	// LinkAllow lists the hosts exfil-link accepts: "example.com" matches
	// that host exactly, ".example.com" or "*.example.com" it and every
	// subdomain. Empty means every external link fires.
	LinkAllow []string
	// Custom are the policy's own rules; Input and Output name them by
	// their Name like built-in rules. Empty: none.
	Custom []policy.Detector
}

// FromGuard turns a grant's guard settings into a Config:
//
//   - injection "flag"/"block": injection-override, injection-roleplay,
//     injection-role-tag, encoded-instructions and hidden-text flag/block
//     inputs (tool results and retrieved documents in a request
//     included); in outputs all but encoded-instructions are flagged, so
//     that instructions an answer passes on from a document are noted.
//   - redact "secrets" / "pii": the rules of that category redact both
//     inputs and outputs.
//   - links "block-external": exfil-link redacts outputs (the link, not
//     the answer, is removed) and flags inputs.
//   - prompts / answers: per category ("secrets", "pii", "injection",
//     "links"), the action of all its rules on inputs / outputs ("off",
//     "flag", "redact", "block"), over what the settings above say.
//   - linkAllow: added to linkAllow, the node's own list.
//   - detectors: the policy's own rules, with the actions of their
//     category as the settings above give them.
//
// Unknown values are ignored; policy validation rejects them earlier.
func FromGuard(g policy.Guard, linkAllow []string) Config {
	allow := append(slices.Clip(linkAllow), g.LinkAllow...)
	cfg := Config{Input: RuleActions{}, Output: RuleActions{}, LinkAllow: allow, Custom: g.Detectors}
	rules := ruleDefs[:]
	for _, d := range g.Detectors {
		cat := map[string]Category{"secrets": CatSecret, "pii": CatPII}[d.Category]
		rules = append(slices.Clip(rules), ruleDef{id: d.Name, cat: cat})
	}
	if a := injectionAction(g.Injection); a != ActionOff {
		for _, r := range []ruleID{rInjOverride, rInjRoleplay, rRoleTag, rEncoded, rHidden} {
			cfg.Input[ruleDefs[r].id] = a
		}
		for _, r := range []ruleID{rInjOverride, rInjRoleplay, rRoleTag, rHidden} {
			cfg.Output[ruleDefs[r].id] = ActionFlag
		}
	}
	for _, what := range g.Redact {
		cat := map[string]Category{"secrets": CatSecret, "pii": CatPII}[what]
		for _, d := range rules {
			if cat != 0 && d.cat == cat {
				cfg.Input[d.id], cfg.Output[d.id] = ActionRedact, ActionRedact
			}
		}
	}
	if g.Links == "block-external" {
		cfg.Input[ruleDefs[rExfil].id] = ActionFlag
		cfg.Output[ruleDefs[rExfil].id] = ActionRedact
	}
	override(cfg.Input, g.Prompts, rules)
	override(cfg.Output, g.Answers, rules)
	return cfg
}

// override sets every rule of a category that a has an action for.
func override(ra RuleActions, a policy.Actions, rules []ruleDef) {
	for cat, s := range map[Category]string{CatSecret: a.Secrets, CatPII: a.PII, CatInjection: a.Injection, CatExfil: a.Links} {
		act, ok := actionByName[s]
		if !ok {
			continue
		}
		for _, d := range rules {
			if d.cat == cat {
				ra[d.id] = act
			}
		}
	}
}

var actionByName = map[string]Action{"off": ActionOff, "flag": ActionFlag, "redact": ActionRedact, "block": ActionBlock}

func injectionAction(s string) Action {
	switch s {
	case "flag":
		return ActionFlag
	case "block":
		return ActionBlock
	}
	return ActionOff
}

// Screen is a compiled Config: one scanner for inputs, one for outputs.
type Screen struct {
	In  *Scanner
	Out *Scanner
}

// Compile builds the scanners of cfg.
func Compile(cfg Config) (*Screen, error) {
	custom, err := compileCustom(cfg.Custom)
	if err != nil {
		return nil, err
	}
	in, err := newScanner(cfg.Input, cfg.LinkAllow, custom)
	if err != nil {
		return nil, err
	}
	out, err := newScanner(cfg.Output, cfg.LinkAllow, custom)
	if err != nil {
		return nil, err
	}
	return &Screen{In: in, Out: out}, nil
}

// ConfigError is a configuration the package cannot compile.
type ConfigError struct{ Msg string }

// Error returns "screen config: " and the problem.
func (e *ConfigError) Error() string { return "screen config: " + e.Msg }

func quote(s string) string { return strconv.Quote(s) }
