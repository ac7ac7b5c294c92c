package guard

import (
	"encoding/json"
	"fmt"

	"github.com/moatmesh/moat/mesh/llmapi"
)

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

// badRequest is a request the guard refuses with 400 and its message.
type badRequest = llmapi.RequestError

func badf(format string, args ...any) error { return &badRequest{Msg: fmt.Sprintf(format, args...)} }

// parseRequest reads body as a request to api.
func parseRequest(body []byte, api *llmapi.API) (*request, error) {
	r := &request{MaxTokens: -1, Stream: api.StreamDefault}
	var ok bool
	if r.fields, ok = splitObject(body); !ok {
		var err error
		if r.fields, err = llmapi.Fields(body); err != nil {
			return nil, err
		}
	}
	if err := api.CheckKeys(r.fields); err != nil {
		return nil, err
	}
	var err error
	if r.Model, _, err = api.Model(r.fields); err != nil {
		return nil, err
	}
	if err := r.readFlags(); err != nil {
		return nil, err
	}
	return r, r.readMax(api)
}

func (r *request) readFlags() error {
	if err := r.optBool("stream", &r.Stream); err != nil {
		return err
	}
	if raw, ok := r.fields["stream_options"]; ok && !isNull(raw) {
		var so map[string]json.RawMessage // exact keys, as the upstream may read them
		bad := json.Unmarshal(raw, &so) != nil || so == nil || llmapi.ExactKeys(so, []string{"include_usage"}) != nil
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
func (r *request) readMax(api *llmapi.API) error {
	for _, k := range api.MaxKeys {
		raw, ok := r.fields[k]
		if k == llmapi.NumPredict {
			raw, ok = r.readOptions()
			if ok && raw == nil {
				return badf("\"options\" must be an object")
			}
		}
		if !ok || isNull(raw) {
			continue
		}
		var n int64
		if err := unmarshalInt64(raw, &n); err != nil || (n < 0 && k != llmapi.NumPredict) {
			return badf("%q must be a non-negative integer", k)
		}
		if n < 0 || (n == 0 && k == llmapi.NumPredict) { // Ollama: 0 and -1 unbounded, -2 fill the context
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
	if err := json.Unmarshal(raw, &r.options); err != nil || r.options == nil || llmapi.ExactKeys(r.options, []string{"num_predict"}) != nil {
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
// decided on; the model then goes in "model" alone (not in /api/show's
// older "name"). When nothing changes, body itself is returned, but only
// if its keys (top level and "options") are distinct and unescaped: a
// duplicated key cannot smuggle another model or length past the guard.
func (r *request) rewrite(body []byte, api *llmapi.API, model string, maxTokens int) []byte {
	capped := maxTokens > 0 && len(api.MaxKeys) > 0 && (r.MaxTokens < 0 || r.maxLargest > int64(maxTokens))
	usage := r.Stream && api.UsageOption && !r.IncludeUsage
	if model == r.Model && !capped && !usage && !r.otherModelKeys(api) && plainKeys(body) && (r.fields["options"] == nil || plainKeys(r.fields["options"])) {
		return body
	}
	for _, k := range api.ModelKeys {
		delete(r.fields, k)
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

// otherModelKeys reports whether the request has a model key besides
// "model" (always the first).
func (r *request) otherModelKeys(api *llmapi.API) bool {
	for _, k := range api.ModelKeys[1:] {
		if _, ok := r.fields[k]; ok {
			return true
		}
	}
	return false
}

// capMax lowers every present answer-length field above n to n, or sets
// the first to n when none is present.
func (r *request) capMax(api *llmapi.API, n int) {
	v := mustJSON(n)
	set := false
	for _, k := range api.MaxKeys {
		if k == llmapi.NumPredict {
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
		r.fields[api.MaxKeys[0]] = v
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
