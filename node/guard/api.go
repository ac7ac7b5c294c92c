package guard

import (
	"net/http"

	"github.com/moatmesh/moat/mesh/llmapi"
)

// metricsAPI is the guard's one path beside the model APIs: Prometheus
// metrics. Its Kind is neither llmapi kind.
var metricsAPI = &llmapi.API{Name: "metrics", Path: "/metrics", Method: http.MethodGet, Family: llmapi.OpenAI}

// route returns the API at path, or nil.
func route(path string) *llmapi.API {
	if path == metricsAPI.Path {
		return metricsAPI
	}
	return llmapi.Lookup(path)
}
