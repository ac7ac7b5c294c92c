package guard

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// pipeUpstream answers with a stream the test writes as it goes.
type pipeUpstream struct{ body io.ReadCloser }

func (p pipeUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: p.body, ContentLength: -1, Request: r}, nil
}

// flushRecorder keeps what had reached the caller at the last Flush.
type flushRecorder struct {
	h       http.Header
	mu      sync.Mutex
	buf     bytes.Buffer
	flushed string
}

func (f *flushRecorder) Header() http.Header { return f.h }
func (f *flushRecorder) WriteHeader(int)     {}
func (f *flushRecorder) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.Write(b)
}
func (f *flushRecorder) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushed = f.buf.String()
}
func (f *flushRecorder) sent() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flushed
}

// TestStreamFlushesBeforeWaiting: events that arrive together go out
// together, but nothing written stays unflushed while the guard waits for
// the upstream, even when the event after it is one the guard drops (the
// usage chunk the caller did not ask for).
func TestStreamFlushesBeforeWaiting(t *testing.T) {
	g := handlerGuard(t, false)
	pr, pw := io.Pipe()
	defer pw.Close()
	g.upstream = pipeUpstream{pr}
	w := &flushRecorder{h: http.Header{}}
	r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(chatBody))
	r.RemoteAddr = "127.0.0.1:40000"
	done := make(chan struct{})
	go func() { defer close(done); g.ServeHTTP(w, r) }()
	pw.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"one\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"two\"}}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n"))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(w.sent(), `"two"`); {
		if time.Now().After(deadline) {
			t.Fatalf("the upstream went quiet and the caller has only %q", w.sent())
		}
		<-tick()
	}
	if !strings.Contains(w.sent(), `"one"`) || strings.Contains(w.sent(), "usage") {
		t.Fatalf("caller got %q", w.sent())
	}
	pw.Write([]byte("data: [DONE]\n\n"))
	pw.Close()
	<-done
	if got := w.sent(); !strings.HasSuffix(got, "data: [DONE]\n\n") || strings.Count(got, "data:") != 3 {
		t.Fatalf("caller got %q", got)
	}
}
