// Package llmapi is what moat knows about the model APIs it carries: the
// OpenAI-compatible /v1 paths and Ollama's native /api paths, which of
// them name a model and where, which stream and by default, which fields
// bound an answer's length, which are lists answered from the netmap; the
// two API families and their error shapes; and the exact-key reader of a
// request's "model".
//
// The employee's router and the node's guard both work from this one
// table, so every path the router forwards is one the guard serves, with
// the same reading of the request. It imports nothing of moat.
package llmapi

import "strings"

// Family is an API family: a request and answer format, an error shape
// and a streaming format. A model server speaks one family; moat does not
// translate between them.
type Family string

// The families. The names are those nodes advertise (wire.ModelAd.API)
// and node configurations use.
const (
	OpenAI Family = "openai" // /v1; errors {"error":{"message","type","code"}}; streams SSE
	Ollama Family = "ollama" // /api; errors {"error":"…"}; streams NDJSON
)

// ParseFamily reads a family name as nodes advertise it. The empty name is
// OpenAI: nodes from before families were advertised served only that.
// Unknown names (a newer node's) report false.
func ParseFamily(s string) (Family, bool) {
	switch Family(s) {
	case OpenAI, "":
		return OpenAI, true
	case Ollama:
		return Ollama, true
	}
	return "", false
}

// FamilyOfPath is the family whose error shape suits a path, served or
// not: Ollama's for /api/..., OpenAI's otherwise.
func FamilyOfPath(path string) Family {
	if strings.HasPrefix(path, "/api/") {
		return Ollama
	}
	return OpenAI
}

// Kind says what answers a path.
type Kind uint8

const (
	// KindModel requests name a model in their JSON body and go to a
	// server of that model.
	KindModel Kind = iota + 1
	// KindList requests are answered from the netmap by whoever is asked
	// (router or guard): the models the caller may use with the family.
	KindList
)

// API is one path of a model API. The table's entries are shared; never
// modify one.
type API struct {
	Name   string // in audit records and metrics, e.g. "openai.chat"
	Path   string // e.g. "/v1/chat/completions"; with PathModel, the prefix
	Method string // "POST" or "GET"
	Family Family
	Kind   Kind
	// PathModel: the path ends in a model's name (GET /v1/models/{model}),
	// and Path is the part before it.
	PathModel bool
	// ModelKeys are the top-level keys that name the model of a KindModel
	// request, in order of precedence: the first present with a non-empty
	// value names it, as the servers read them.
	ModelKeys []string
	// MaxKeys are the request fields that bound the answer's length, in
	// the order they are capped; the first is added when none is present.
	// NumPredict is Ollama's nested field; NPredict is llama.cpp's, which
	// its server reads before max_tokens. Empty: no answer length.
	MaxKeys []string
	// CostKeys are the other top-level fields that multiply the answers
	// (n, best_of, a batch of prompts), lengthen them (min_tokens,
	// ignore_eos) or change what serving the request costs the model
	// server (background, keep_alive, raw, template). A guard caps or
	// refuses each; see docs/policy.md.
	CostKeys []string
	// StreamDefault is whether the API streams when "stream" is absent.
	StreamDefault bool
	// UsageOption: the API takes stream_options.include_usage.
	UsageOption bool
	// NoTokens: answers cost no model tokens (model information), so none
	// are counted against a budget.
	NoTokens bool
	// Twin is the path of the other family that does what this one does,
	// for telling callers which to use; "" when there is none.
	Twin string
	// Keys are the top-level keys moat reads in a request: the model keys
	// and those that steer the answer (stream, its options, lengths). A
	// request with a key differing from one of them only in case is
	// refused (see CheckKeys).
	Keys []string
}

// NumPredict is Ollama's answer-length field, nested in "options".
const NumPredict = "options.num_predict"

// NPredict is llama.cpp's answer-length field: llama-server reads it
// before max_tokens, and -1 asks for no bound.
const NPredict = "n_predict"

// LoadOptions are the Ollama "options" that change how the model server
// loads the model (context size, GPU layers, threads, memory mapping): a
// request carrying one makes Ollama reload the model with them, for
// every caller of the node.
var LoadOptions = []string{"num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "use_mmap", "use_mlock", "numa", "low_vram", "f16_kv", "vocab_only"}

const oneModelPrefix = "/v1/models/"

var table = []*API{
	{Name: "openai.chat", Path: "/v1/chat/completions", Family: OpenAI, MaxKeys: []string{"max_tokens", "max_completion_tokens", NPredict},
		CostKeys: []string{"n", "min_tokens", "ignore_eos"}, UsageOption: true, Twin: "/api/chat"},
	{Name: "openai.completions", Path: "/v1/completions", Family: OpenAI, MaxKeys: []string{"max_tokens", NPredict},
		CostKeys: []string{"n", "best_of", "prompt", "min_tokens", "ignore_eos"}, UsageOption: true, Twin: "/api/generate"},
	{Name: "openai.embeddings", Path: "/v1/embeddings", Family: OpenAI, Twin: "/api/embed"},
	{Name: "openai.responses", Path: "/v1/responses", Family: OpenAI, MaxKeys: []string{"max_output_tokens", NPredict},
		CostKeys: []string{"background"}, Twin: "/api/chat"},
	{Name: "openai.models", Path: "/v1/models", Method: "GET", Family: OpenAI, Kind: KindList},
	{Name: "openai.model", Path: oneModelPrefix, Method: "GET", Family: OpenAI, Kind: KindList, PathModel: true},
	{Name: "ollama.chat", Path: "/api/chat", Family: Ollama, MaxKeys: []string{NumPredict}, CostKeys: []string{"keep_alive"}, StreamDefault: true, Twin: "/v1/chat/completions"},
	{Name: "ollama.generate", Path: "/api/generate", Family: Ollama, MaxKeys: []string{NumPredict}, CostKeys: []string{"keep_alive", "raw", "template"}, StreamDefault: true, Twin: "/v1/completions"},
	{Name: "ollama.embed", Path: "/api/embed", Family: Ollama, CostKeys: []string{"keep_alive"}, Twin: "/v1/embeddings"},
	// The legacy embeddings API: one "prompt", answered {"embedding":[…]}.
	{Name: "ollama.embeddings", Path: "/api/embeddings", Family: Ollama, CostKeys: []string{"keep_alive"}, Twin: "/v1/embeddings"},
	// Model information (modelfile, template, parameters); older clients
	// name the model in "name", which Ollama reads when "model" is empty.
	{Name: "ollama.show", Path: "/api/show", Family: Ollama, ModelKeys: []string{"model", "name"}, NoTokens: true},
	{Name: "ollama.tags", Path: "/api/tags", Method: "GET", Family: Ollama, Kind: KindList},
}

var (
	byPath   = map[string]*API{}
	oneModel *API // GET /v1/models/{model}
)

func init() {
	for _, a := range table {
		if a.Kind == 0 {
			a.Kind = KindModel
		}
		if a.Method == "" {
			a.Method = "POST"
		}
		if a.Kind == KindModel && a.ModelKeys == nil {
			a.ModelKeys = []string{"model"}
		}
		a.Keys = append(append([]string(nil), a.ModelKeys...), "stream", "stream_options", "logprobs", "top_logprobs", "options")
		for _, k := range a.MaxKeys {
			if k != NumPredict {
				a.Keys = append(a.Keys, k)
			}
		}
		a.Keys = append(a.Keys, a.CostKeys...)
		if a.PathModel {
			oneModel = a
		} else {
			byPath[a.Path] = a
		}
	}
}

// Lookup returns the API at path, or nil.
func Lookup(path string) *API {
	if a := byPath[path]; a != nil {
		return a
	}
	if len(path) > len(oneModelPrefix) && strings.HasPrefix(path, oneModelPrefix) {
		return oneModel
	}
	return nil
}

// All returns every API, in a fixed order (OpenAI's, then Ollama's).
func All() []*API { return append([]*API(nil), table...) }

// PathModelName returns the model a path of a PathModel API names.
func (a *API) PathModelName(path string) string { return strings.TrimPrefix(path, a.Path) }

// Paths lists the paths of every API, "/v1/models/{model}" for the one
// with the model in its path, for telling callers what there is.
func Paths() []string {
	var out []string
	for _, a := range table {
		p := a.Path
		if a.PathModel {
			p += "{model}"
		}
		out = append(out, p)
	}
	return out
}

// Instead names the path to call instead of a for a model served with
// family f: a's Twin, or the family's chat path when a has none.
func (a *API) Instead(f Family) string {
	switch {
	case a.Family == f:
		return a.Path
	case a.Twin != "":
		return a.Twin
	case f == Ollama:
		return "/api/chat"
	}
	return "/v1/chat/completions"
}
