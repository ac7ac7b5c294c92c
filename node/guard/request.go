package guard

import (
	"encoding/json"
	"fmt"
	"slices"

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
	// unbounded: a length field asks for no bound (n_predict -1,
	// num_predict -1, -2 or 0).
	unbounded bool
	// IncludeUsage: the caller asked for stream_options.include_usage.
	IncludeUsage bool
	Logprobs     bool
	cost         costFields

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
	if err := r.readOptions(api); err != nil {
		return nil, err
	}
	if err := r.readMax(api); err != nil {
		return nil, err
	}
	return r, r.readCost(api)
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

// optionNames are the Ollama options the guard reads, by exact key.
var optionNames = append([]string{"num_predict"}, llmapi.LoadOptions...)

// readOptions reads Ollama's "options" object, when present.
func (r *request) readOptions(api *llmapi.API) error {
	raw, ok := r.fields["options"]
	if !ok || isNull(raw) || api.Family != llmapi.Ollama {
		return nil
	}
	if err := json.Unmarshal(raw, &r.options); err != nil || r.options == nil {
		return badf("\"options\" must be an object")
	}
	if err := llmapi.ExactKeys(r.options, optionNames); err != nil {
		return badf("\"options\": %v", err)
	}
	return nil
}

// readMax reads the API's answer-length fields.
func (r *request) readMax(api *llmapi.API) error {
	for _, k := range api.MaxKeys {
		raw, ok := r.lengthField(k)
		if !ok || isNull(raw) {
			continue
		}
		signed := k == llmapi.NumPredict || k == llmapi.NPredict // -1: no bound
		var n int64
		if err := unmarshalInt64(raw, &n); err != nil || (n < 0 && !signed) {
			return badf("%q must be a non-negative integer", k)
		}
		if n < 0 || (n == 0 && k == llmapi.NumPredict) { // Ollama: 0 and -1 unbounded, -2 fill the context
			r.unbounded = true
			continue
		}
		if r.MaxTokens < 0 || n < r.MaxTokens {
			r.MaxTokens = n
		}
		r.maxLargest = max(r.maxLargest, n)
	}
	return nil
}

// lengthField returns the raw value of length field k.
func (r *request) lengthField(k string) (json.RawMessage, bool) {
	if k == llmapi.NumPredict {
		v, ok := r.options["num_predict"]
		return v, ok
	}
	v, ok := r.fields[k]
	return v, ok
}

// rewrite returns the body to send upstream: the model renamed to model,
// the edits of out applied, and, for a stream of an API that takes it,
// stream_options.include_usage set (replacing the caller's
// stream_options). When nothing changes, body itself is returned; a
// changed body keeps every other byte as sent. Either needs the body's
// keys (top level and "options") distinct and unescaped: otherwise the
// body is re-encoded from the object the guard read, so that a
// duplicated key cannot smuggle another model or length past the guard,
// and the model then goes in "model" alone (not in /api/show's older
// "name").
func (r *request) rewrite(body []byte, api *llmapi.API, model string, out *output) []byte {
	edits := slices.Clone(out.edits)
	if model != r.Model || r.otherModelKeys(api) {
		for _, k := range api.ModelKeys[1:] {
			if _, ok := r.fields[k]; ok {
				edits = append(edits, edit{key: k})
			}
		}
		edits = append(edits, edit{key: "model", val: mustJSON(model)})
	}
	if r.Stream && api.UsageOption && !r.IncludeUsage {
		edits = append(edits, edit{key: "stream_options", val: []byte(`{"include_usage":true}`)})
	}
	plain := plainKeys(body) && (r.fields["options"] == nil || plainKeys(r.fields["options"]))
	if plain && len(edits) == 0 {
		return body
	}
	if plain {
		if b, ok := spliceObject(body, edits); ok {
			return b
		}
	}
	return r.reencode(api, model, edits)
}

// reencode is rewrite for a body whose keys are not plain: the object the
// guard read, edited, with the model in "model" alone.
func (r *request) reencode(api *llmapi.API, model string, edits []edit) []byte {
	for _, k := range api.ModelKeys {
		delete(r.fields, k)
	}
	r.fields["model"] = mustJSON(model)
	for _, e := range edits {
		switch {
		case slices.Contains(api.ModelKeys, e.key):
		case e.val == nil:
			delete(r.fields, e.key)
		default:
			r.fields[e.key] = e.val
		}
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

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
