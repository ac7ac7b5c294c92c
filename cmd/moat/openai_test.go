package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/e2e"
	"github.com/moatmesh/moat/internal/npmtest"
	"github.com/moatmesh/moat/mesh/client"
)

// TestOpenAISDK drives the local endpoint with the official openai npm
// package (testdata/openai, pinned by its package-lock.json), with the
// local API token (`moat token`) as the SDK's apiKey: a streamed chat
// completion arrives chunk by chunk and in order, and a model that is not
// granted comes back as the SDK's own error with moat's message.
func TestOpenAISDK(t *testing.T) {
	dir := "testdata/openai"
	node := npmtest.Install(t, dir)
	f := startMesh(t, "gpu-1")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, err := client.Dir(f.dir).Token(false)
	if err != nil {
		t.Fatal(err)
	}
	out := npmtest.Run(t, ctx, node, dir, []string{"MOAT_BASE_URL=" + f.endpoint + "/v1", "MOAT_API_KEY=" + token}, "chat.mjs")

	var chunks []string
	var refusal struct {
		Refused bool   `json:"refused"`
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	for line := range strings.Lines(out) {
		var v struct {
			Content *string `json:"content"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("script printed %q: %v\n%s", line, err, out)
		}
		if v.Content != nil {
			chunks = append(chunks, *v.Content)
			continue
		}
		json.Unmarshal([]byte(line), &refusal)
	}
	if want := e2e.StandinChunks(); !slices.Equal(chunks, want) {
		t.Fatalf("the SDK read chunks %q, want %q", chunks, want)
	}
	if !refusal.Refused || refusal.Status != 404 || refusal.Code != "model_not_found" || !strings.Contains(refusal.Message, "llama") {
		t.Fatalf("a model not granted, through the SDK: %+v", refusal)
	}
}
