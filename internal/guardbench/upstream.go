package guardbench

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Upstream is the stand-in model server.
type Upstream struct {
	URL    string
	base   time.Time
	chunks int
	every  time.Duration
	srv    *http.Server
}

// wholeAnswer is the non-streamed chat completion (its text has no
// secrets: screening finds nothing and forwards it as is).
const wholeAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"llama","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris. It lies on the Seine."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26}}`

// StartUpstream serves on addr ("127.0.0.1:0" picks a port). Streams send
// chunks events, one every every (0: back to back); each carries in
// "created" the nanoseconds since base at which it was sent.
func StartUpstream(addr string, base time.Time, chunks int, every time.Duration) (*Upstream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	u := &Upstream{URL: "http://" + ln.Addr().String(), base: base, chunks: chunks, every: every}
	u.srv = &http.Server{Handler: http.HandlerFunc(u.serve)}
	go u.srv.Serve(ln)
	return u, nil
}

// Close stops the server.
func (u *Upstream) Close() error { return u.srv.Close() }

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if !strings.Contains(string(b), `"stream":true`) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(wholeAnswer)))
		io.WriteString(w, wholeAnswer)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	fl := w.(http.Flusher)
	var t *time.Ticker
	if u.every > 0 {
		t = time.NewTicker(u.every)
		defer t.Stop()
	}
	for range u.chunks {
		if t != nil {
			<-t.C
		}
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":\"llama\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word \"}}]}\n\n", time.Since(u.base).Nanoseconds())
		fl.Flush()
	}
	if strings.Contains(string(b), `"include_usage":true`) {
		io.WriteString(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":20,\"total_tokens\":32}}\n\n")
	}
	io.WriteString(w, "data: [DONE]\n\n")
}
