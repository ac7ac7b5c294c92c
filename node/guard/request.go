package guard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxModelName bounds the "model" field.
const maxModelName = 256

// request is what the guard reads of a model request's JSON body. Every
// other field goes upstream untouched.
type request struct {
	Model  string
	Stream bool
	// MaxTokens is the answer-length bound the caller asked for, the
	// smallest of the API's maxKeys present; -1 when none is.
	MaxTokens int64
	// maxLargest is the largest of them: servers differ in which one they
	// honour, so a cap must hold for every one.
	maxLargest int64
	// IncludeUsage: the caller asked for stream_options.include_usage.
	IncludeUsage bool
	Logprobs     bool

	fields  map[string]json.RawMessage
	options map[string]json.RawMessage // Ollama's "options", when present
}

// badRequest is a request the guard refuses with 400 and this message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// parseRequest reads body as a request to api.
func parseRequest(body []byte, api *apiSpec) (*request, error) {
	r := &request{MaxTokens: -1, Stream: api.streamDefault}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badf("the request body is empty; send a JSON object with at least \"model\"")
	}
	var ok bool
	if r.fields, ok = splitObject(body); !ok {
		if err := json.Unmarshal(body, &r.fields); err != nil || r.fields == nil {
			return nil, badf("the request body is not a JSON object: %s", jsonErr(err))
		}
	}
	if err := exactKeys(r.fields, api.readKeys); err != nil {
		return nil, err
	}
	if err := r.readModel(); err != nil {
		return nil, err
	}
	if err := r.readFlags(); err != nil {
		return nil, err
	}
	return r, r.readMax(api)
}

// exactKeys refuses an object with a key that differs from one of names
// only in case (Unicode simple folding: "Model", "ſtream", "max_toKens"
// with a Kelvin sign). The guard reads its keys exactly, but Go's
// encoding/json, and so servers such as Ollama, match struct fields
// case-insensitively: such a key would let the upstream act on a model,
// length or stream flag the guard never decided on.
func exactKeys(obj map[string]json.RawMessage, names []string) error {
	for k := range obj {
		for _, name := range names {
			if k != name && strings.EqualFold(k, name) {
				return badf("the key %q differs from %q only in case; write it exactly as %q", k, name, name)
			}
		}
	}
	return nil
}

func jsonErr(err error) string {
	if err == nil {
		return "got null"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func (r *request) readModel() error {
	raw, ok := r.fields["model"]
	if !ok {
		return badf("the request has no \"model\"; name the model to use")
	}
	if err := unmarshalString(raw, &r.Model); err != nil {
		return badf("\"model\" must be a string")
	}
	if r.Model == "" || len(r.Model) > maxModelName || !utf8.ValidString(r.Model) {
		return badf("\"model\" must be 1 to %d bytes of UTF-8", maxModelName)
	}
	return nil
}

func (r *request) readFlags() error {
	if err := r.optBool("stream", &r.Stream); err != nil {
		return err
	}
	if raw, ok := r.fields["stream_options"]; ok && !isNull(raw) {
		var so map[string]json.RawMessage // exact keys, as the upstream may read them
		bad := json.Unmarshal(raw, &so) != nil || so == nil || exactKeys(so, []string{"include_usage"}) != nil
		if iu, ok := so["include_usage"]; !bad && ok && !isNull(iu) {
			bad = unmarshalBool(iu, &r.IncludeUsage) != nil
		}
		if bad {
			return badf("\"stream_options\" must be an object with a boolean \"include_usage\"")
		}
	}
	if raw, ok := r.fields["logprobs"]; ok && !isNull(raw) {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return badf("\"logprobs\" must be a boolean or a number")
		}
		switch v := v.(type) {
		case bool:
			r.Logprobs = v
		case float64:
			r.Logprobs = v > 0
		default:
			return badf("\"logprobs\" must be a boolean or a number")
		}
	}
	return nil
}

func (r *request) optBool(name string, dst *bool) error {
	raw, ok := r.fields[name]
	if !ok || isNull(raw) {
		return nil
	}
	if err := unmarshalBool(raw, dst); err != nil {
		return badf("%q must be true or false", name)
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// readMax reads the API's answer-length fields.
func (r *request) readMax(api *apiSpec) error {
	for _, k := range api.maxKeys {
		raw, ok := r.fields[k]
		if k == numPredict {
			raw, ok = r.readOptions()
			if ok && raw == nil {
				return badf("\"options\" must be an object")
			}
		}
		if !ok || isNull(raw) {
			continue
		}
		var n int64
		if err := unmarshalInt64(raw, &n); err != nil || (n < 0 && k != numPredict) {
			return badf("%q must be a non-negative integer", k)
		}
		if n < 0 || (n == 0 && k == numPredict) { // Ollama: 0 and -1 unbounded, -2 fill the context
			continue
		}
		if r.MaxTokens < 0 || n < r.MaxTokens {
			r.MaxTokens = n
		}
		r.maxLargest = max(r.maxLargest, n)
	}
	return nil
}

// readOptions returns options.num_predict; a nil raw with ok means
// "options" is not an object.
func (r *request) readOptions() (json.RawMessage, bool) {
	raw, ok := r.fields["options"]
	if !ok || isNull(raw) {
		return nil, false
	}
	if err := json.Unmarshal(raw, &r.options); err != nil || r.options == nil || exactKeys(r.options, []string{"num_predict"}) != nil {
		return nil, true
	}
	v, ok := r.options["num_predict"]
	return v, ok
}

// rewrite returns the body to send upstream: the model renamed to model,
// the answer length capped at maxTokens (when > 0), and, for a stream of
// an API that takes it, stream_options.include_usage set (replacing the
// caller's stream_options). A changed body is re-encoded from the object
// the guard read, so the upstream sees exactly the values the guard
// decided on. When nothing changes, body itself is returned, but only if
// its keys (top level and "options") are distinct and unescaped: a
// duplicated key cannot smuggle another model or length past the guard.
func (r *request) rewrite(body []byte, api *apiSpec, model string, maxTokens int) []byte {
	capped := maxTokens > 0 && len(api.maxKeys) > 0 && (r.MaxTokens < 0 || r.maxLargest > int64(maxTokens))
	usage := r.Stream && api.usageOption && !r.IncludeUsage
	if model == r.Model && !capped && !usage && plainKeys(body) && (r.fields["options"] == nil || plainKeys(r.fields["options"])) {
		return body
	}
	r.fields["model"] = mustJSON(model)
	if capped {
		r.capMax(api, maxTokens)
	}
	if usage {
		r.fields["stream_options"] = []byte(`{"include_usage":true}`)
	}
	return mustJSON(r.fields)
}

// capMax lowers every present answer-length field above n to n, or sets
// the first to n when none is present.
func (r *request) capMax(api *apiSpec, n int) {
	v := mustJSON(n)
	set := false
	for _, k := range api.maxKeys {
		if k == numPredict {
			if r.options == nil {
				r.options = map[string]json.RawMessage{}
			}
			r.options["num_predict"] = v
			r.fields["options"] = mustJSON(r.options)
			return
		}
		if raw, ok := r.fields[k]; ok && !isNull(raw) {
			var have int64
			if unmarshalInt64(raw, &have) != nil || have > int64(n) {
				r.fields[k] = v
			}
			set = true
		}
	}
	if !set {
		r.fields[api.maxKeys[0]] = v
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
