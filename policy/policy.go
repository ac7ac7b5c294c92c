package policy

import "strconv"

// Policy is a parsed and validated policy document. Build one with Parse or
// Check; the zero value grants nothing. A Policy is not modified after
// parsing and is safe for concurrent use.
type Policy struct {
	// File is the name errors and explanations refer to.
	File string
	// Groups maps "group:NAME" to its members as written: logins,
	// "idp:NAME", "autogroup:…" and other groups.
	Groups map[string][]string
	// TagOwners maps every tag the policy knows, "tag:NAME", to who may
	// give it to a node. A tag not listed here cannot be used anywhere.
	TagOwners map[string][]string
	// Models are the models the mesh may serve, in file order.
	Models []Model
	// Grants are the grants in file order; Grants[i].ID() is "grants[i]".
	Grants []Grant
	// Tests are the policy's own assertions, run by RunTests and Check.
	Tests []Test
	// MCP are the MCP servers the mesh may serve, in file order.
	MCP []MCPServer
	// Budgets are the prices of models and the budgets that count them.
	Budgets Budgets

	modelIndex map[string]int   // model name → index in Models
	groupsOf   map[string][]int // user principal → indices into groupNames of the groups holding it, transitively
	groupNames []string         // sorted
	bySrc      map[string][]int // principal → indices of the grants naming it in src
	rank       []int            // grant indices, most generous limits first (see docs/policy.md)
	mcpIndex   map[string]int   // MCP server name → index in MCP
}

// Model is one entry of "models".
type Model struct {
	Name string
	// ServedBy lists the tags whose nodes may serve the model. A node
	// without one of them may not serve it, whatever it advertises.
	ServedBy []string
	// SHA256 is the pinned hash of the model file in lowercase hex, or "".
	SHA256 string
	// Description is free text for people.
	Description string
	// MaxOutputTokens caps the answer length of a request for the model
	// under a grant that sets no maxTokens; 0 means
	// DefaultMaxOutputTokens.
	MaxOutputTokens int
	// MaxChoices is the most answers one request may ask for (OpenAI's n
	// and best_of, times the prompts of a batched completion); 0 means
	// DefaultMaxChoices.
	MaxChoices int
	// EncryptedAtRest, when true, lets a node serve the model only while
	// its weights file, its audit spool and its state directory are on
	// encrypted storage (fscrypt or dm-crypt) as the node detects it.
	// Default false: not required.
	EncryptedAtRest bool
	Pos             Pos
}

// Defaults of the models' output fields, as the guard applies them.
const (
	// DefaultMaxOutputTokens is a model's output cap when the policy sets
	// none: long enough for a full answer of today's chat models, short
	// enough that one request cannot hold a GPU for minutes.
	DefaultMaxOutputTokens = 4096
	// DefaultMaxChoices: one answer per request unless the policy allows
	// more.
	DefaultMaxChoices = 1
)

// Rule returns the compiled form of m that nodes enforce.
func (m *Model) Rule() ModelRule {
	return ModelRule{Model: m.Name, MaxOutputTokens: m.MaxOutputTokens, MaxChoices: m.MaxChoices, EncryptedAtRest: m.EncryptedAtRest}
}

// Grant is one entry of "grants".
type Grant struct {
	Index int // position in Policy.Grants
	Pos   Pos // of the grant's opening brace
	// Src are the identities the grant applies to, as written.
	Src []string
	// Models are model names or *-globs, as written.
	Models []string
	// Dst are network destinations, as written: "tag:NAME:PORT",
	// "tag:NAME:FIRST-LAST", "tag:NAME:*" or "*".
	Dst []string
	// MFA is the longest time since the caller's last MFA the grant
	// accepts for model use; 0 means it is not checked.
	MFA    Duration
	Limits Limits
	Guard  Guard
	Audit  Audit
	// MCP are MCP tool patterns, SERVER:TOOL with TOOL a name or *-glob,
	// as written.
	MCP []string

	// MFAFactor is the kind of second factor the grant demands; "" is
	// any (parse_mfa.go).
	MFAFactor Factor

	models []int        // indices into Policy.Models the patterns match, ascending
	dst    []netDst     // parsed Dst
	mcp    []mcpPattern // parsed MCP
}

// ID names the grant in compiled rules, audit records and explanations.
func (g *Grant) ID() string { return "grants[" + strconv.Itoa(g.Index) + "]" }

// Rule returns the compiled form of g that nodes enforce.
func (g *Grant) Rule() GrantRule {
	return GrantRule{ID: g.ID(), MFA: g.MFA, MFAFactor: g.MFAFactor, Limits: g.Limits, Guard: g.Guard, Audit: g.Audit}
}

// netDst is one parsed network destination.
type netDst struct {
	tag   string // "" means every tagged node
	ports PortRange
}

// Test is one entry of "tests": what a given identity must and must not be
// able to reach.
type Test struct {
	Pos Pos
	// Who is the identity the assertions are about, built from the test's
	// "src", "groups" and "admin" keys.
	Who Identity
	// Accept and Deny are targets: "model:NAME", "mcp:SERVER:TOOL" or
	// "tag:NAME:PORT".
	Accept []Target
	Deny   []Target
}

// Target is one thing a test asserts about, where the test names it.
type Target struct {
	Text string
	Pos  Pos
}
