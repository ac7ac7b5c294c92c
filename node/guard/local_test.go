package guard

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestServeLocal: the local listener serves metrics with the runtime
// series and a health check that fails once no model is available.
func TestServeLocal(t *testing.T) {
	g, err := New(Config{Models: map[string]Upstream{"m1": {URL: "http://127.0.0.1:1", Kind: "openai"}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.ServeLocal(ln) }()
	base := "http://" + ln.Addr().String()
	fetch := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := fetch("/metrics")
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", `moat_guard_model_available{model="m1"} 1`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics %d lacks %s", code, want)
		}
	}
	if code, body := fetch("/healthz"); code != 200 {
		t.Errorf("/healthz %d %s, want 200", code, body)
	}
	g.SetModelUnavailable("m1", "weights file changed")
	if code, body := fetch("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "m1: weights file changed") {
		t.Errorf("/healthz with no model available: %d %s, want 503 naming m1", code, body)
	}
	if _, body := fetch("/metrics"); !strings.Contains(body, `moat_guard_model_available{model="m1"} 0`) {
		t.Error("a stopped model is not 0 in moat_guard_model_available")
	}
	g.Close()
	if err := <-served; err != ErrClosed {
		t.Errorf("ServeLocal after Close: %v, want ErrClosed", err)
	}
}
