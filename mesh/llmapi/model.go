package llmapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxModelLen bounds a model name; longer ones are refused rather than
// echoed back in messages.
const MaxModelLen = 256

// RequestError is a request refused with 400 Bad Request; Msg says what is
// wrong and where, for the person calling the API.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func badf(format string, args ...any) error { return &RequestError{fmt.Sprintf(format, args...)} }

// ReadModel returns the model a request body to a names: Fields, then
// CheckKeys, then Model. Errors are *RequestError.
func ReadModel(body []byte, a *API) (string, error) {
	if m, err, ok := readModelFast(body, a); ok {
		return m, err
	}
	return readModel(body, a)
}

// readModel is ReadModel the general way, through Fields.
func readModel(body []byte, a *API) (string, error) {
	fields, err := Fields(body)
	if err != nil {
		return "", err
	}
	if err := a.CheckKeys(fields); err != nil {
		return "", err
	}
	m, _, err := a.Model(fields)
	return m, err
}

// Fields reads body as a JSON object into its members' raw values, as
// encoding/json does into a map (a repeated key keeps its last value).
// Errors are *RequestError.
func Fields(body []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badf(`the request body is empty; send a JSON object with at least "model"`)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, badf("the request body is not a JSON object: %s", describeJSON(err))
	}
	return m, nil
}

func describeJSON(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "got null"
	case errors.As(err, &syn) && syn.Offset >= 0 && strings.Contains(syn.Error(), "unexpected end"):
		return "it ends early"
	case errors.As(err, &syn):
		return fmt.Sprintf("%v at offset %d", syn, syn.Offset)
	case errors.As(err, &typ):
		return "got JSON " + typ.Value
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// CheckKeys refuses members whose key differs from one of a.Keys only in
// case; see ExactKeys.
func (a *API) CheckKeys(fields map[string]json.RawMessage) error { return ExactKeys(fields, a.Keys) }

// ExactKeys refuses an object with a key that differs from one of names
// only in case (Unicode simple folding: "Model", "ſtream", "max_toKens"
// with a Kelvin sign). moat reads keys exactly, but Go's encoding/json,
// and so servers such as Ollama, match struct fields case-insensitively:
// such a key would let the model server act on a model, length or stream
// flag moat never decided on. Errors are *RequestError.
func ExactKeys(obj map[string]json.RawMessage, names []string) error {
	for k := range obj {
		for _, name := range names {
			if k != name && strings.EqualFold(k, name) {
				return badf("the key %q differs from %q only in case; write it exactly as %q", k, name, name)
			}
		}
	}
	return nil
}

// Model returns the model a request to a names and the key it was read
// from: the first of a.ModelKeys present with a non-empty value, read by
// exact key. It must be a string of 1 to MaxModelLen bytes of UTF-8.
// Errors are *RequestError.
func (a *API) Model(fields map[string]json.RawMessage) (model, key string, err error) {
	return a.model(func(k string) ([]byte, bool) {
		raw, ok := fields[k]
		return raw, ok
	})
}

// model is Model over any way of looking up a top-level member's raw
// value.
func (a *API) model(member func(k string) ([]byte, bool)) (model, key string, err error) {
	empty := ""
	for _, k := range a.ModelKeys {
		raw, ok := member(k)
		if !ok || string(raw) == "null" {
			continue
		}
		if model, err = readString(raw); err != nil {
			return "", "", badf("%q must be a string, got %s", k, kindOf(raw))
		}
		switch {
		case model == "":
			empty = cmp.Or(empty, k) // Ollama reads "name" when "model" is empty
			continue
		case len(model) > MaxModelLen:
			return "", "", badf("%q is %d bytes long, over the limit of %d", k, len(model), MaxModelLen)
		case !utf8.ValidString(model):
			return "", "", badf("%q is not valid UTF-8", k)
		}
		return model, k, nil
	}
	if empty != "" {
		return "", "", badf("%q is empty; name one of the models in GET /v1/models or /api/tags", empty)
	}
	return "", "", badf(`the request has no "model"; name the model to use`)
}

// readString is json.Unmarshal for a string, without reflection (or an
// allocation beyond the string's) when raw is a plain string literal.
func readString(raw []byte) (string, error) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && plainString(raw[1:n-1]) {
		return string(raw[1 : n-1]), nil
	}
	return decodeString(raw)
}

func decodeString(raw []byte) (string, error) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// plainString reports whether b is a string literal's content that
// decodes to itself: valid UTF-8 without quotes, escapes or control
// characters.
func plainString(b []byte) bool {
	for _, c := range b {
		if c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return utf8.Valid(b)
}

func kindOf(raw json.RawMessage) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}
