package guard

import (
	"encoding/json"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/policy"
)

// A request's worst case is what it may cost before it is forwarded:
// its prompt (estimated from the body) and, for each answer it asks for,
// the answer-length bound the guard sends upstream. Every field of the
// served APIs that multiplies or lengthens the answers is read, and
// either capped (rewritten in the body) or refused with 400 naming it;
// docs/policy.md has the table.

// costFields are a request's llmapi.API.CostKeys and Ollama load options,
// as read.
type costFields struct {
	n, bestOf  int64 // 0: absent
	prompts    int64 // the prompts of a batched /v1/completions; 0: absent
	minTokens  int64 // -1: absent
	ignoreEOS  bool
	background bool
	raw        bool
	template   bool   // a non-empty template
	keepAlive  bool   // present
	loadOption string // the first of llmapi.LoadOptions in "options"
}

// outputRule is what the policy lets one request ask for: the answer
// length cap (the grant's maxTokens, else the model's maxOutputTokens)
// and the most answers (the model's maxChoices); and what its tokens
// cost, for money budgets.
type outputRule struct {
	maxTokens, maxChoices int64
	price                 policy.Price
}

// defaultOutput is the output rule of a model the policy sets nothing for.
var defaultOutput = outputRule{maxTokens: policy.DefaultMaxOutputTokens, maxChoices: policy.DefaultMaxChoices}

// outputRules returns the output rules of the models rules lists, the
// policy's defaults filled in.
func outputRules(rules *policy.NodeRules) map[string]outputRule {
	out := map[string]outputRule{}
	if rules == nil {
		return out
	}
	for _, m := range rules.Models {
		r := defaultOutput
		if m.MaxOutputTokens > 0 {
			r.maxTokens = int64(m.MaxOutputTokens)
		}
		if m.MaxChoices > 0 {
			r.maxChoices = int64(m.MaxChoices)
		}
		r.price = policy.Price{Input: m.InputPrice, Output: m.OutputPrice}
		out[m.Model] = r
	}
	return out
}

// ruleFor returns the output rule of model under grant g: the model's,
// with the grant's maxTokens as the cap when it sets one.
func (s *snapshot) ruleFor(g *policy.GrantRule, model string) outputRule {
	r, ok := s.output[model]
	if !ok {
		r = defaultOutput
	}
	if g != nil && g.Limits.MaxTokens > 0 {
		r.maxTokens = int64(g.Limits.MaxTokens)
	}
	return r
}

// output is what the guard decided about a request's answers.
type output struct {
	length  int64  // each answer's length bound as sent upstream; 0 for APIs without one
	answers int64  // how many answers the request asks for
	edits   []edit // of the body's top level
}

// reservation is the tokens a request of body's size with out reserves:
// the prompt estimate and each answer at its full length.
func (out *output) reservation(api *llmapi.API, bodyLen int) int64 {
	if api.NoTokens {
		return 0
	}
	return estimate(bodyLen) + out.length*out.answers
}

// readCost reads the API's cost fields.
func (r *request) readCost(api *llmapi.API) error {
	c := &r.cost
	c.minTokens = -1
	for _, k := range api.CostKeys {
		raw, ok := r.fields[k]
		if !ok || isNull(raw) {
			continue
		}
		var err error
		switch k {
		case "n":
			err = readCount(raw, k, 1, &c.n)
		case "best_of":
			err = readCount(raw, k, 1, &c.bestOf)
		case "min_tokens":
			err = readCount(raw, k, 0, &c.minTokens)
		case "prompt":
			c.prompts = promptCount(raw)
		case "ignore_eos":
			err = r.optBool(k, &c.ignoreEOS)
		case "background":
			err = r.optBool(k, &c.background)
		case "raw":
			err = r.optBool(k, &c.raw)
		case "template":
			var s string
			if json.Unmarshal(raw, &s) != nil {
				err = badf("%q must be a string", k)
			}
			c.template = s != ""
		case "keep_alive":
			c.keepAlive = true
		}
		if err != nil {
			return err
		}
	}
	for _, o := range llmapi.LoadOptions {
		if v, ok := r.options[o]; ok && !isNull(v) {
			c.loadOption = o
			break
		}
	}
	return nil
}

// readCount reads an integer of at least least.
func readCount(raw json.RawMessage, k string, least int64, dst *int64) error {
	if unmarshalInt64(raw, dst) != nil || *dst < least {
		if least == 0 {
			return badf("%q must be a non-negative integer", k)
		}
		return badf("%q must be a positive integer", k)
	}
	return nil
}

// promptCount is how many prompts a completions "prompt" holds: an
// array of strings or of token arrays is a batch, each answered on its
// own; a string or one token array is one.
func promptCount(raw json.RawMessage) int64 {
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return 1
	}
	var n int64
	for _, it := range items {
		if len(it) > 0 && (it[0] == '"' || it[0] == '[') {
			n++
		}
	}
	return max(n, 1)
}

// answers is how many answers the request asks for: the larger of n and
// best_of, for each prompt of a batch.
func (c *costFields) answers() int64 { return max(1, c.n, c.bestOf) * max(1, c.prompts) }

// refuse returns the 400 for a cost field the guard does not forward.
func (c *costFields) refuse(model string, maxChoices int64) error {
	const allow = "the most model %q allows in one request is %d (the policy's maxChoices)"
	switch {
	case c.ignoreEOS:
		return badf(`"ignore_eos": true makes the model write to the length limit whatever it says; this node does not forward it`)
	case c.background:
		return badf(`"background": true runs the response on the model server after this request has ended, where this node's guard cannot count or stop it; send the request without it`)
	case c.raw:
		return badf(`"raw": true sends the prompt past the model's template; this node does not forward it`)
	case c.template:
		return badf(`"template" replaces the model's prompt template; this node does not forward it`)
	case c.loadOption != "":
		return badf(`"options.%s" changes how the model server loads the model, for every caller of this node; the node's operator sets it, so leave it out`, c.loadOption)
	case c.n > maxChoices:
		return badf(`"n" asks for %d answers; `+allow, c.n, model, maxChoices)
	case c.bestOf > maxChoices:
		return badf(`"best_of" asks for %d answers; `+allow, c.bestOf, model, maxChoices)
	case c.answers() > maxChoices:
		return badf(`"prompt" is a batch of %d prompts, each answered on its own: %d answers in all; `+allow, c.prompts, c.answers(), model, maxChoices)
	}
	return nil
}

// shape decides the request's answers under rule: refused (a
// *badRequest), or the length each answer gets, how many there are, and
// the edits that make the body ask for no more.
func (r *request) shape(api *llmapi.API, rule outputRule) (*output, error) {
	if err := r.cost.refuse(r.Model, rule.maxChoices); err != nil {
		return nil, err
	}
	out := &output{answers: r.cost.answers()}
	if len(api.MaxKeys) > 0 {
		out.length = rule.maxTokens
		if r.MaxTokens >= 0 && !r.unbounded {
			out.length = min(out.length, r.maxLargest)
		}
		r.capLengths(api, out)
	}
	if r.cost.minTokens > out.length {
		out.edits = append(out.edits, edit{key: "min_tokens", val: mustJSON(out.length)})
	}
	if r.cost.keepAlive {
		out.edits = append(out.edits, edit{key: "keep_alive"})
	}
	return out, nil
}

// capLengths sets every length field present that is above out.length or
// asks for no bound to out.length, and adds the API's first one when it
// is absent: whichever a server honours, it bounds the answer.
func (r *request) capLengths(api *llmapi.API, out *output) {
	v := mustJSON(out.length)
	for i, k := range api.MaxKeys {
		raw, ok := r.lengthField(k)
		var have int64
		switch {
		case !ok || isNull(raw):
			if i > 0 {
				continue
			}
		case unmarshalInt64(raw, &have) == nil && have >= 0 && have <= out.length && !(have == 0 && k == llmapi.NumPredict):
			continue
		}
		if k == llmapi.NumPredict {
			out.edits = append(out.edits, edit{key: "options", val: r.editOptions(edit{key: "num_predict", val: v})})
		} else {
			out.edits = append(out.edits, edit{key: k, val: v})
		}
	}
}

// editOptions returns "options" with e applied, its other bytes as sent
// when its keys are plain.
func (r *request) editOptions(e edit) json.RawMessage {
	raw := r.fields["options"]
	if raw != nil && !isNull(raw) && plainKeys(raw) {
		if b, ok := spliceObject(raw, []edit{e}); ok {
			return b
		}
	}
	opts := make(map[string]json.RawMessage, len(r.options)+1)
	for k, v := range r.options {
		opts[k] = v
	}
	opts[e.key] = e.val
	return mustJSON(opts)
}
