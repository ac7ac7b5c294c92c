package guard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/policy"
)

func TestStreamSilentUpstreamIsCut(t *testing.T) {
	stopped := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"}}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the guard hangs up
		close(stopped)
	}))
	defer silent.Close()
	m := newMesh(t, policy.Limits{}, func(c *Config) {
		c.Models["drip"] = Upstream{URL: silent.URL, Kind: KindOpenAI}
		c.UpstreamIdleTimeout = 100 * time.Millisecond
	})
	code, body := m.call(m.alice, "/v1/chat/completions", `{"model":"drip","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if code != http.StatusOK || !strings.Contains(body, "tok ") || !strings.Contains(body, `"code":"`+reasonUpstreamSlow+`"`) {
		t.Fatalf("status %d, answer %s; want the first event and a cut naming %s", code, body, reasonUpstreamSlow)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not ended")
	}
}
