package screen

import (
	"encoding/json"
	"strconv"
)

// Action is what the guard does when a rule fires.
type Action int

const (
	// ActionOff: the rule does not run. The zero Action.
	ActionOff Action = iota
	// ActionFlag: the finding is reported (audit only); the text passes unchanged.
	ActionFlag
	// ActionRedact: the matched bytes are replaced by a typed marker such
	// as [REDACTED:aws-access-key].
	ActionRedact
	// ActionBlock: the request (or the rest of the answer) is refused with
	// a *BlockError naming the rule.
	ActionBlock
)

// String returns "off", "flag", "redact" or "block".
func (a Action) String() string {
	switch a {
	case ActionFlag:
		return "flag"
	case ActionRedact:
		return "redact"
	case ActionBlock:
		return "block"
	}
	return "off"
}

// Category groups rules the way the policy names them.
type Category int

const (
	// CatSecret: credentials and keys (policy redact "secrets").
	CatSecret Category = iota + 1
	// CatPII: personal data (policy redact "pii").
	CatPII
	// CatInjection: prompt injection, hidden text, smuggled instructions
	// (policy "injection").
	CatInjection
	// CatExfil: links that can carry data out of a chat UI (policy "links").
	CatExfil
)

// String returns "secret", "pii", "injection" or "exfil".
func (c Category) String() string {
	switch c {
	case CatSecret:
		return "secret"
	case CatPII:
		return "pii"
	case CatInjection:
		return "injection"
	case CatExfil:
		return "exfil"
	}
	return "unknown"
}

// Finding is one rule firing on a byte span of the scanned text. It never
// holds the matched text, so logging or auditing it cannot leak a secret.
type Finding struct {
	Rule     string   // rule id, e.g. "aws-access-key"; used in markers and audit
	Category Category // the rule's category
	Start    int      // byte offset of the first matched byte
	End      int      // byte offset just past the match
	Action   Action   // what the configuration says to do about it
}

// String describes the finding without its text, e.g.
// "aws-access-key (secret) at 10-30: redact".
func (f Finding) String() string {
	return f.Rule + " (" + f.Category.String() + ") at " + strconv.Itoa(f.Start) + "-" +
		strconv.Itoa(f.End) + ": " + f.Action.String()
}

// Marker returns the text that replaces the finding when redacted.
func (f Finding) Marker() string { return marker(f.Rule) }

func marker(rule string) string { return markerPrefix + rule + "]" }

// markerPrefix opens a redaction marker.
const markerPrefix = "[REDACTED:"

// BlockError is returned when a rule whose action is ActionBlock fires. Its
// message names the rule and never echoes the matched text.
type BlockError struct {
	Rule     string
	Category Category
}

// Error says which rule refused the text and what to do.
func (e *BlockError) Error() string {
	return "blocked by guard rule " + e.Rule + " (" + e.Category.String() +
		"); remove it from the text or ask an admin about the policy"
}

// OpenAIError returns the error in the OpenAI API's shape:
// {"error":{"message":...,"type":"guard_blocked","code":RULE}}.
func (e *BlockError) OpenAIError() []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": e.Error(), "type": "guard_blocked", "code": e.Rule,
	}})
	return b
}

// OllamaError returns the error in Ollama's shape: {"error":...}.
func (e *BlockError) OllamaError() []byte {
	b, _ := json.Marshal(map[string]string{"error": e.Error()})
	return b
}
