package guard

import "strings"

// family is an API family: the error shape and streaming format it uses.
type family uint8

const (
	openAI family = iota // errors {"error":{...}}, streams SSE
	ollama               // errors {"error":"..."}, streams NDJSON
)

func (f family) kind() string {
	if f == ollama {
		return KindOllama
	}
	return KindOpenAI
}

// apiKind says what the guard does with a path.
type apiKind uint8

const (
	kindModel   apiKind = iota // proxied to a model's upstream
	kindList                   // answered by the guard: the caller's models
	kindMetrics                // Prometheus metrics
)

// apiSpec describes one API path the guard serves.
type apiSpec struct {
	name   string // in audit records and metrics, e.g. "openai.chat"
	path   string
	method string
	family family
	kind   apiKind
	// maxKeys are the request fields that bound the answer's length, in
	// the order they are capped; the first is added when none is present.
	// "options.num_predict" is Ollama's nested field. Empty: no answer
	// length (embeddings).
	maxKeys []string
	// streamDefault is whether the API streams when "stream" is absent.
	streamDefault bool
	// usageOption: the API takes stream_options.include_usage.
	usageOption bool
	// readKeys are the top-level keys the guard reads (set by init): a
	// request with a key differing from one of them only in case is
	// refused (exactKeys).
	readKeys []string
}

var apis = map[string]*apiSpec{
	"/v1/chat/completions": {name: "openai.chat", method: "POST", maxKeys: []string{"max_tokens", "max_completion_tokens"}, usageOption: true},
	"/v1/completions":      {name: "openai.completions", method: "POST", maxKeys: []string{"max_tokens"}, usageOption: true},
	"/v1/embeddings":       {name: "openai.embeddings", method: "POST"},
	"/v1/responses":        {name: "openai.responses", method: "POST", maxKeys: []string{"max_output_tokens"}},
	"/v1/models":           {name: "openai.models", method: "GET", kind: kindList},
	"/api/chat":            {name: "ollama.chat", method: "POST", family: ollama, maxKeys: []string{numPredict}, streamDefault: true},
	"/api/generate":        {name: "ollama.generate", method: "POST", family: ollama, maxKeys: []string{numPredict}, streamDefault: true},
	"/api/embed":           {name: "ollama.embed", method: "POST", family: ollama},
	"/api/tags":            {name: "ollama.tags", method: "GET", family: ollama, kind: kindList},
	"/metrics":             {name: "metrics", method: "GET", kind: kindMetrics},
}

const numPredict = "options.num_predict"

func init() {
	for path, a := range apis {
		a.path = path
		a.readKeys = []string{"model", "stream", "stream_options", "logprobs", "top_logprobs", "options"}
		for _, k := range a.maxKeys {
			if k != numPredict {
				a.readKeys = append(a.readKeys, k)
			}
		}
	}
}

// route returns the API at path, or nil.
func route(path string) *apiSpec { return apis[path] }

// familyOf guesses the error shape for a path the guard does not serve.
func familyOf(path string) family {
	if strings.HasPrefix(path, "/api/") {
		return ollama
	}
	return openAI
}
