package llmapi

import (
	"encoding/json"
	"time"
)

// OpenAIModel is one entry of OpenAI's model list, and the answer of
// GET /v1/models/{model}.
type OpenAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// OllamaModel is one entry of Ollama's /api/tags.
type OllamaModel struct {
	Name       string    `json:"name"`
	Model      string    `json:"model"`
	ModifiedAt time.Time `json:"modified_at"`
	Size       int64     `json:"size"`
	Digest     string    `json:"digest"`
	Details    struct{}  `json:"details"`
}

// ListBody is the answer of the KindList API a for the models names, in
// the order given: OpenAI's {"object":"list","data":[…]}, the one model
// for GET /v1/models/{model} (names[0]), or Ollama's {"models":[…]}.
// owner fills OpenAI's owned_by, modified Ollama's modified_at.
func ListBody(a *API, names []string, owner string, modified time.Time) []byte {
	var v any
	switch {
	case a.Family == Ollama:
		ms := make([]OllamaModel, 0, len(names))
		for _, n := range names {
			ms = append(ms, OllamaModel{Name: n, Model: n, ModifiedAt: modified})
		}
		v = struct {
			Models []OllamaModel `json:"models"`
		}{ms}
	case a.PathModel && len(names) > 0:
		v = OpenAIModel{ID: names[0], Object: "model", OwnedBy: owner}
	default:
		data := make([]OpenAIModel, 0, len(names))
		for _, n := range names {
			data = append(data, OpenAIModel{ID: n, Object: "model", OwnedBy: owner})
		}
		v = struct {
			Object string        `json:"object"`
			Data   []OpenAIModel `json:"data"`
		}{"list", data}
	}
	b, _ := json.Marshal(v)
	return append(b, '\n')
}
