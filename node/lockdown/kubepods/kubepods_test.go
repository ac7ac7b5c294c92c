package kubepods

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	uidA = "1f0c3c2e-7a51-4b0e-9d43-2b8f6a9e0c11"
	uidB = "2a7e0d55-1c3b-4f6e-8a90-3c4d5e6f7a8b"
	uidC = "3b8f1e66-2d4c-4a7f-9ba1-4d5e6f7a8b9c"
)

func podJSON(uid, name string, hostNet bool) string {
	return fmt.Sprintf(`{"metadata":{"name":%q,"namespace":"ai","uid":%q},"spec":{"hostNetwork":%v,"containers":[]}}`, name, uid, hostNet)
}

// fakeAPI answers the list with pod A and streams the watch events sent
// on events; it checks the token and the selectors.
type fakeAPI struct {
	t      *testing.T
	events chan string
	lists  chan struct{}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Header.Get("Authorization") != "Bearer tok-1" || r.URL.Path != "/api/v1/pods" ||
		q.Get("labelSelector") != "moat.dev/lockdown=inference" || q.Get("fieldSelector") != "spec.nodeName=gpu-1" {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if q.Get("watch") == "" {
		f.lists <- struct{}{}
		fmt.Fprintf(w, `{"kind":"PodList","metadata":{"resourceVersion":"10"},"items":[%s]}`, podJSON(uidA, "vllm-0", true))
		return
	}
	if q.Get("resourceVersion") != "10" {
		http.Error(w, "bad resourceVersion", http.StatusBadRequest)
		return
	}
	w.(http.Flusher).Flush()
	for {
		select {
		case ev := <-f.events:
			fmt.Fprintln(w, ev)
			w.(http.Flusher).Flush()
			if strings.Contains(ev, `"ERROR"`) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

type answer struct {
	patterns []string
	err      error
}

func startSource(t *testing.T, api *fakeAPI) <-chan answer {
	srv := httptest.NewTLSServer(api)
	t.Cleanup(srv.Close)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("tok-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Source{Selector: "moat.dev/lockdown=inference", Node: "gpu-1", API: srv.URL, TokenFile: tok, Client: srv.Client(), Retry: 10 * time.Millisecond}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	out := make(chan answer, 16)
	go func() {
		defer close(done)
		s.Run(ctx, func(p []string, err error) { out <- answer{p, err} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

func next(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no update from the source in 10s")
	}
	return answer{}
}

func holds(a answer, uids ...string) bool {
	want := 0
	for _, u := range uids {
		p, _ := Patterns(u)
		want += len(p)
		for _, x := range p {
			if !strings.Contains(strings.Join(a.patterns, " "), x) {
				return false
			}
		}
	}
	return len(a.patterns) == want
}

// TestSource follows a node's labelled pods through the list and the
// watch: added and deleted pods change the patterns; a pod on its own
// network is named in an error (the lockdown cannot hold it); a broken
// watch (410 Gone) leads to a new list, and meanwhile the error says so
// without patterns (the lockdown keeps the last).
func TestSource(t *testing.T) {
	api := &fakeAPI{t: t, events: make(chan string), lists: make(chan struct{}, 4)}
	ch := startSource(t, api)
	<-api.lists
	if a := next(t, ch); a.err != nil || !holds(a, uidA) {
		t.Fatalf("after the list: %v %v", a.patterns, a.err)
	}
	api.events <- `{"type":"ADDED","object":` + podJSON(uidB, "vllm-1", true) + `}`
	if a := next(t, ch); a.err != nil || !holds(a, uidA, uidB) {
		t.Fatalf("after ADDED: %v %v", a.patterns, a.err)
	}
	api.events <- `{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}`
	api.events <- `{"type":"DELETED","object":` + podJSON(uidA, "vllm-0", true) + `}`
	if a := next(t, ch); a.err != nil || !holds(a, uidB) {
		t.Fatalf("after DELETED: %v %v", a.patterns, a.err)
	}
	api.events <- `{"type":"ADDED","object":` + podJSON(uidC, "bridge", false) + `}`
	if a := next(t, ch); a.err == nil || !strings.Contains(a.err.Error(), "ai/bridge do not use the host's network") || !holds(a, uidB, uidC) {
		t.Fatalf("a pod on its own network: %v %v", a.patterns, a.err)
	}
	api.events <- `{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}`
	if a := next(t, ch); a.err == nil || a.patterns != nil || !strings.Contains(a.err.Error(), "410") {
		t.Fatalf("a broken watch: %v %v", a.patterns, a.err)
	}
	<-api.lists // listed again
	if a := next(t, ch); a.err != nil || !holds(a, uidA) {
		t.Fatalf("after the new list: %v %v", a.patterns, a.err)
	}
}

// TestSourceRefused: a service account without the right is named in
// the error, and the source keeps trying.
func TestSourceRefused(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `pods is forbidden: User "system:serviceaccount:moat:node" cannot list resource "pods"`, http.StatusForbidden)
	}))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t"), 0o600)
	s := &Source{Selector: "a=b", Node: "n", API: srv.URL, TokenFile: tok, Client: srv.Client(), Retry: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	s.Run(ctx, func(p []string, err error) {
		if p != nil || err == nil || !strings.Contains(err.Error(), "needs list and watch on pods") {
			t.Errorf("update(%v, %v)", p, err)
		}
		if n++; n == 3 {
			cancel()
		}
	})
}

func TestPatterns(t *testing.T) {
	got, err := Patterns(uidA)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kubepods.slice/kubepods-pod1f0c3c2e_7a51_4b0e_9d43_2b8f6a9e0c11.slice",
		"kubepods.slice/kubepods-*.slice/kubepods-*-pod1f0c3c2e_7a51_4b0e_9d43_2b8f6a9e0c11.slice",
		"kubepods/pod" + uidA,
		"kubepods/*/pod" + uidA,
	}
	if js, _ := json.Marshal(got); string(js) != string(must(json.Marshal(want))) {
		t.Errorf("Patterns = %s", js)
	}
	for _, bad := range []string{"", "*", "1f0c3c2e-7a51-4b0e-9d43-2b8f6a9e0c1*", "../x"} {
		if _, err := Patterns(bad); err == nil {
			t.Errorf("Patterns(%q) accepted", bad)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
