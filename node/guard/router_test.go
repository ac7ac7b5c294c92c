package guard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/mesh/router"
	"github.com/moatmesh/moat/policy"
)

// routed is a guard's test mesh with alice's router in front: the path a
// request takes from an employee's tool to the model server.
type routed struct {
	*mesh
	url string // alice's router
}

func newRouted(t *testing.T) *routed {
	t.Helper()
	m := newMesh(t, policy.Limits{}, nil)
	r, err := router.New(router.Config{Dialer: m.alice.Eng})
	if err != nil {
		t.Fatal(err)
	}
	// alice's netmap as the coordinator makes it: the node's models with
	// their API families.
	peer := m.node.peer()
	peer.Models, peer.APIs = testModels, map[string]string{"qwen": KindOllama}
	r.SetNetMap(m.alice.netmap(1, nil, peer))
	srv := httptest.NewServer(r)
	t.Cleanup(func() { srv.Close(); r.Close() })
	return &routed{mesh: m, url: srv.URL}
}

// do sends one request through the router (via) or straight to the guard.
func (m *routed) do(via bool, method, path, body string) (int, string) {
	m.t.Helper()
	c, base := m.alice.client(), m.mesh.url
	if via {
		c, base = http.DefaultClient, m.url
	}
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		m.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// modelOf is a model the test node serves with family f.
func modelOf(f llmapi.Family) string {
	if f == llmapi.Ollama {
		return "qwen"
	}
	return "llama"
}

// Every path of the llmapi table works through the router and the guard
// alike, and a path one refuses as unknown the other refuses too: the two
// cannot drift apart again.
func TestRouterAndGuardServeTheSamePaths(t *testing.T) {
	m := newRouted(t)
	for _, api := range llmapi.All() {
		model := modelOf(api.Family)
		method, path, body := api.Method, api.Path, ""
		switch {
		case api.PathModel:
			path += model
		case api.Kind == llmapi.KindModel:
			body = `{"` + api.ModelKeys[len(api.ModelKeys)-1] + `":"` + model + `"}`
		}
		for _, via := range []bool{true, false} {
			if code, got := m.do(via, method, path, body); code != http.StatusOK {
				t.Errorf("%s %s %s (through the router: %v): %d %s", method, path, body, via, code, got)
			}
		}
	}
	for _, path := range []string{"/v1/images/generations", "/v1/models/", "/api/pull", "/api/ps", "/api/chat/x", "/v2/chat/completions", "/"} {
		rc, rb := m.do(true, "POST", path, `{"model":"llama"}`)
		gc, gb := m.do(false, "POST", path, `{"model":"llama"}`)
		if rc != http.StatusNotFound || gc != http.StatusNotFound {
			t.Errorf("POST %s: router %d %s, guard %d %s; want both 404", path, rc, rb, gc, gb)
		}
	}
}

// The router lists what the guard lists, family by family.
func TestRouterAndGuardListTheSame(t *testing.T) {
	m := newRouted(t)
	for _, path := range []string{"/v1/models", "/api/tags"} {
		var lists [2][]string
		for i, via := range []bool{true, false} {
			code, body := m.do(via, "GET", path, "")
			if code != http.StatusOK {
				t.Fatalf("GET %s (through the router: %v): %d %s", path, via, code, body)
			}
			lists[i] = listNames(t, body)
		}
		if !slices.Equal(lists[0], lists[1]) || len(lists[0]) == 0 {
			t.Errorf("GET %s: router lists %v, guard %v", path, lists[0], lists[1])
		}
		if ollama := slices.Contains(lists[0], "qwen"); ollama != (path == "/api/tags") {
			t.Errorf("GET %s lists %v", path, lists[0])
		}
	}
}

// listNames reads the model names of an OpenAI or Ollama list.
func listNames(t *testing.T, body string) []string {
	t.Helper()
	var v struct {
		Data   []struct{ ID string }
		Models []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var out []string
	for _, d := range v.Data {
		out = append(out, d.ID)
	}
	for _, d := range v.Models {
		out = append(out, d.Name)
	}
	slices.Sort(out)
	return out
}
