// Package audit keeps the node's audit trail: one Record per model request,
// appended to a local hash-chained spool file (tampering is detectable with
// Verify) and shipped to the coordinator in batches by a Shipper.
//
// The JSON field names of Record are part of the node↔coordinator protocol:
// add fields freely, never rename or retype one. The coordinator stores the
// fields of store.AuditRecord (ID, NodeID, Time, UserID, Login, DeviceID,
// Model, API, Decision, Reason, Grant, TokensIn, TokensOut, LatencyMS,
// Status) from the same-named JSON fields below and keeps the whole line as
// the record's Body.
package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Decisions a Record carries.
const (
	DecisionAllow   = "allow"    // the request went to the model server
	DecisionDeny    = "deny"     // no grant, unknown caller or expired key
	DecisionDenyMFA = "deny-mfa" // a grant applies but the last MFA is too old
	DecisionLimit   = "limit"    // refused by a rate or token limit
	DecisionInvalid = "invalid"  // the request could not be served as sent
)

// Record is one model request as the node saw it. The spool fills ID (when
// empty), Seq, Prev and Hash.
type Record struct {
	ID         string    `json:"id"`   // unique; 32 hex digits, random
	Seq        uint64    `json:"seq"`  // position in this node's spool, from 1
	Time       time.Time `json:"time"` // when the request arrived
	NodeID     string    `json:"nodeId,omitempty"`
	Node       string    `json:"node,omitempty"` // the node's name
	UserID     string    `json:"userId,omitempty"`
	Login      string    `json:"login,omitempty"`
	DeviceID   string    `json:"deviceId,omitempty"`
	DeviceName string    `json:"deviceName,omitempty"`
	Tags       []string  `json:"tags,omitempty"`   // the caller's tags (tagged callers)
	Source     string    `json:"source,omitempty"` // the caller's mesh address
	Model      string    `json:"model,omitempty"`
	API        string    `json:"api,omitempty"` // e.g. "openai.chat", "ollama.generate"
	Decision   string    `json:"decision"`      // one of the Decision constants
	Reason     string    `json:"reason,omitempty"`
	Grant      string    `json:"grant,omitempty"` // the policy grant that decided, e.g. "grants[2]"
	TokensIn   int64     `json:"tokensIn"`
	TokensOut  int64     `json:"tokensOut"`
	// Estimated is set when the upstream reported no usage and the token
	// counts are estimates.
	Estimated bool  `json:"estimated,omitempty"`
	LatencyMS int64 `json:"latencyMs"`
	TTFTMS    int64 `json:"ttftMs,omitempty"` // time to the first answer byte, streams
	Status    int   `json:"status"`           // HTTP status sent to the caller (499: caller went away)
	Stream    bool  `json:"stream,omitempty"`
	// Prompt is the request body as received when the grant's audit
	// setting was "full", written by nodes from before PromptSealed;
	// PromptHash its keyed hash (HashPrompt) for "hash".
	Prompt     json.RawMessage `json:"prompt,omitempty"`
	PromptHash string          `json:"promptHash,omitempty"`
	// PromptSealed is the prompt kept for "full", encrypted to the
	// person's prompt key (mesh/promptkey): only the coordinator, which
	// holds that key sealed, reads it, and erasing the key makes it
	// unreadable while the record's hash still holds. Nodes of now write
	// this, never Prompt.
	PromptSealed string `json:"promptSealed,omitempty"`
	// Findings are the screening rules that fired on the request or its
	// answer: rule ids and categories only, never the matched text.
	Findings []Finding `json:"findings,omitempty"`
	// Abuse names the abuse events this request raised for its caller:
	// "burst", "near-duplicates", "logprobs".
	Abuse []string `json:"abuse,omitempty"`
	// Quota is "offline" when the request was admitted while the
	// coordinator, which counts tokensPerDay, could not be reached: on
	// the node's last lease or its allowance for the outage.
	Quota string `json:"quota,omitempty"`
	// MCP is set for a request to an MCP server (API "mcp"): the server,
	// the method and, for tools/call, the tool, the arguments' keyed hash
	// and the result's size.
	MCP *MCPCall `json:"mcp,omitempty"`
	// Cost is what the tokens cost at the policy's price of the model, in
	// micro-units of its currency; 0 when the policy prices it at nothing.
	Cost int64 `json:"cost,omitempty"`
	// BudgetWarnings name the budgets counting the request that had passed
	// their soft threshold when it was admitted, as the answer's
	// X-Moat-Budget-Warning header said.
	BudgetWarnings []string `json:"budgetWarnings,omitempty"`

	Prev string `json:"prev"`           // Hash of the previous record; "" for the first
	Hash string `json:"hash,omitempty"` // see the spool's line format
}

// Finding is one screening rule that fired, counted per rule, action and
// direction.
type Finding struct {
	Rule     string `json:"rule"`     // e.g. "aws-access-key"
	Category string `json:"category"` // "secret", "pii", "injection", "exfil"
	Action   string `json:"action"`   // "flag", "redact" or "block"
	Where    string `json:"where"`    // "input" or "output"
	Count    int    `json:"count"`    // how often it fired
}

// NewID returns a fresh record ID.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

// HashPrompt returns the keyed hash the "hash" audit setting keeps of a
// prompt: "hmac-sha256:" and the hex HMAC-SHA256 of body under key. The
// same prompt hashes alike under one key, so an auditor holding the key
// can test whether a given text was sent, and nobody without it can.
func HashPrompt(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
}

// MCPCall is what a Record keeps of a request to an MCP server.
type MCPCall struct {
	Server string `json:"server"`
	Method string `json:"method,omitempty"` // e.g. "tools/call"
	Tool   string `json:"tool,omitempty"`
	// ArgsHash is HashPrompt of the call's arguments as received, under
	// the node's audit key.
	ArgsHash string `json:"argsHash,omitempty"`
	// ResultBytes is the size of the result as the server sent it.
	ResultBytes int64 `json:"resultBytes,omitempty"`
}
