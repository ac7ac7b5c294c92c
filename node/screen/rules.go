package screen

import "github.com/moatmesh/moat/policy"

// ruleID indexes the rule table. The order is the priority when two
// findings overlap: the lower id (the more specific rule) wins.
type ruleID uint8

const (
	rPrivateKey ruleID = iota
	rAWS
	rGitHub
	rSlack
	rStripe
	rGCP
	rOpenAI
	rAnthropic
	rHuggingFace
	rGitLab
	rAge
	rNotion
	rSourcegraph
	rTailscale
	rVercel
	rGroq
	rNuGet
	rVault
	rAuthress
	rAPIToken
	rK8sSecret
	rAzure
	rJWT
	rWebhook
	rAuthHeader
	rConnString
	rExfil
	rIBAN
	rCreditCard
	rSSN
	rNPI
	rDEA
	rNHS
	rEmail
	rIP
	rPhone
	rInjOverride
	rInjRoleplay
	rRoleTag
	rEncoded
	rHidden
	rGeneric
	numRules
)

// maxRules bounds the rules of one scanner: the built-in ones and the
// policy's own detectors (ids numRules and up).
const maxRules = numRules + policy.MaxDetectors

// tailKind says how a match that reaches the end of the visible text is
// followed into the next chunks of a stream.
type tailKind uint8

const (
	tailNone    tailKind = iota // the match has a bounded length
	tailToken                   // continues over [A-Za-z0-9_.+/=-]
	tailPEM                     // continues to the END line of a PEM block
	tailURL                     // continues to ')', '"', '>' or white space
	tailGeneric                 // continues as a generic value (genericValueLen)
	tailSet                     // continues over the span's charset
	tailStop                    // does not continue (a span's override of its rule's tail)
	tailJWT                     // continues over the parts of a JWT
)

type ruleDef struct {
	id  string
	cat Category
	// decide is the decision length: the bytes, from the first byte of a
	// match, that the detector needs to see to decide it is one.
	decide int
	tail   tailKind
}

var ruleDefs = [numRules]ruleDef{
	rPrivateKey:  {"private-key", CatSecret, 96 + minPEMBody, tailPEM},
	rAWS:         {"aws-access-key", CatSecret, 21, tailNone},
	rGitHub:      {"github-token", CatSecret, 94, tailToken},
	rSlack:       {"slack-token", CatSecret, 48, tailToken},
	rStripe:      {"stripe-key", CatSecret, 40, tailToken},
	rGCP:         {"gcp-api-key", CatSecret, 40, tailNone},
	rOpenAI:      {"openai-key", CatSecret, 64, tailToken},
	rAnthropic:   {"anthropic-key", CatSecret, 0, tailToken},
	rHuggingFace: {"huggingface-token", CatSecret, 0, tailToken},
	rGitLab:      {"gitlab-token", CatSecret, 0, tailToken},
	rAge:         {"age-secret-key", CatSecret, 0, tailToken},
	rNotion:      {"notion-token", CatSecret, 0, tailToken},
	rSourcegraph: {"sourcegraph-token", CatSecret, 64, tailNone},
	rTailscale:   {"tailscale-key", CatSecret, 0, tailToken},
	rVercel:      {"vercel-token", CatSecret, 0, tailToken},
	rGroq:        {"groq-key", CatSecret, 0, tailToken},
	rNuGet:       {"nuget-key", CatSecret, 0, tailToken},
	rVault:       {"vault-token", CatSecret, 0, tailToken},
	rAuthress:    {"authress-key", CatSecret, authressDecide, tailToken},
	rAPIToken:    {"api-token", CatSecret, 0, tailToken},
	rK8sSecret:   {"kubernetes-secret", CatSecret, k8sWindow + 1, tailToken},
	rAzure:       {"azure-key", CatSecret, 96, tailToken},
	rJWT:         {"jwt", CatSecret, 96, tailJWT},
	rWebhook:     {"webhook-url", CatSecret, 160, tailURL},
	rAuthHeader:  {"auth-header", CatSecret, 96, tailSet},
	rConnString:  {"connection-string", CatSecret, 160, tailURL},
	rExfil:       {"exfil-link", CatExfil, 200, tailURL},
	rIBAN:        {"iban", CatPII, 44, tailNone},
	rCreditCard:  {"credit-card", CatPII, 25, tailNone},
	rSSN:         {"us-ssn", CatPII, 13, tailNone},
	rNPI:         {"us-npi", CatPII, 12, tailNone},
	rDEA:         {"us-dea", CatPII, 10, tailNone},
	rNHS:         {"uk-nhs-number", CatPII, 13, tailNone},
	rEmail:       {"email", CatPII, 160, tailToken},
	rIP:          {"ip-address", CatPII, 48, tailNone},
	rPhone:       {"phone", CatPII, 24, tailNone},
	rInjOverride: {"injection-override", CatInjection, 200, tailNone},
	rInjRoleplay: {"injection-roleplay", CatInjection, 200, tailNone},
	rRoleTag:     {"injection-role-tag", CatInjection, 48, tailNone},
	rEncoded:     {"encoded-instructions", CatInjection, 200, tailToken},
	rHidden:      {"hidden-text", CatInjection, 64, tailNone},
	rGeneric:     {"generic-high-entropy", CatSecret, genericDecide + 1, tailGeneric},
}

// MaxHoldBack caps the bytes a Stream holds back, whatever the rules.
const MaxHoldBack = 256

// RuleInfo describes one rule.
type RuleInfo struct {
	ID       string   // the id used in markers, findings and audit
	Category Category // which policy setting enables it
	// DecisionLen is how many bytes from the start of a match the rule
	// needs to see to decide; a Stream holds back one byte more.
	DecisionLen int
}

// Rules lists every rule, most specific first.
func Rules() []RuleInfo {
	out := make([]RuleInfo, numRules)
	for i, d := range ruleDefs {
		out[i] = RuleInfo{ID: d.id, Category: d.cat, DecisionLen: d.decide}
	}
	return out
}

// ruleByID returns the rule with the given id.
func ruleByID(id string) (ruleID, bool) {
	for i, d := range ruleDefs {
		if d.id == id {
			return ruleID(i), true
		}
	}
	return 0, false
}
