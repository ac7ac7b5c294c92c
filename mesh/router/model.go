package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// maxModelLen bounds a model name; longer names are refused rather than
// echoed back in error messages.
const maxModelLen = 256

// ErrNoModel is returned (wrapped) by ParseModel when the body has no
// "model" field.
var ErrNoModel = errors.New(`request has no "model" field`)

// ParseModel returns the "model" field of the JSON object in body. It
// reads nothing else: every other field travels on to the node as sent.
// The errors say what is wrong and where, for the person calling the API.
func ParseModel(body []byte) (string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", errors.New("request body is empty; want a JSON object with a \"model\" field")
	}
	var v struct {
		Model json.RawMessage `json:"model"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&v); err != nil {
		return "", describeJSON(err)
	}
	if _, err := d.Token(); err != io.EOF {
		return "", fmt.Errorf("request body: unexpected data after the JSON object at offset %d", d.InputOffset())
	}
	return modelName(v.Model)
}

// modelName checks the raw "model" value: a non-empty string of sane length.
func modelName(raw json.RawMessage) (string, error) {
	if raw == nil || string(raw) == "null" {
		return "", ErrNoModel
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf(`"model" must be a string, got %s`, kindOf(raw))
	}
	switch {
	case s == "":
		return "", errors.New(`"model" is empty; name one of the models in GET /v1/models`)
	case len(s) > maxModelLen:
		return "", fmt.Errorf(`"model" is %d bytes long, over the limit of %d`, len(s), maxModelLen)
	case !utf8.ValidString(s):
		return "", errors.New(`"model" is not valid UTF-8`)
	}
	return s, nil
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

func describeJSON(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("request body is not valid JSON at offset %d: %v", syn.Offset, syn)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("request body must be a JSON object, got JSON %s", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("request body is not valid JSON: it ends early")
	default:
		return fmt.Errorf("request body: %v", err)
	}
}
