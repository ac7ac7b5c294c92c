package upclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingServer is an httptest server that counts the connections it
// accepted and those that are closed.
type countingServer struct {
	*httptest.Server
	opened, closed atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	s := &countingServer{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func upPost(t *testing.T, u *Client, ctx context.Context, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return u.RoundTrip(req)
}

// roundTrip posts body and returns the whole answer.
func roundTrip(t *testing.T, u *Client, url, body string) string {
	t.Helper()
	resp, err := upPost(t, u, context.Background(), url, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Write(b)
}

func TestUpClientKeepsConnections(t *testing.T) {
	s := newCountingServer(t, echo)
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	for i := range 20 {
		if got := roundTrip(t, u, s.URL+"/x", strings.Repeat("a", i)); got != strings.Repeat("a", i) {
			t.Fatalf("answer %d: %q", i, got)
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Fatalf("20 requests opened %d connections, want 1", n)
	}
}

func TestUpClientChunkedAndUnsizedAnswers(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" { // no length: the answer ends with the connection
			w.Header().Set("Connection", "close")
		}
		for range 3 {
			io.WriteString(w, "chunk\n")
			w.(http.Flusher).Flush()
		}
	})
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	for range 3 {
		if got := roundTrip(t, u, s.URL+"/chunked", ""); got != "chunk\nchunk\nchunk\n" {
			t.Fatalf("chunked answer %q", got)
		}
	}
	if n := s.opened.Load(); n != 1 {
		t.Fatalf("chunked answers opened %d connections, want 1", n)
	}
	roundTrip(t, u, s.URL+"/close", "")
	roundTrip(t, u, s.URL+"/chunked", "")
	if n := s.opened.Load(); n != 2 {
		t.Fatalf("a request after a Connection: close answer used %d connections in all, want 2", n)
	}
}

func TestUpClientServerClosedIdleConnection(t *testing.T) {
	s := newCountingServer(t, echo)
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	roundTrip(t, u, s.URL, "one")
	s.CloseClientConnections()
	waitFor(t, "the server to close the connection", func() bool { return s.closed.Load() == 1 })
	if got := roundTrip(t, u, s.URL, "two"); got != "two" {
		t.Fatalf("answer on a new connection: %q", got)
	}
	if n := s.opened.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

// rawServer answers each connection's first request and then, for every
// later one, reads it and closes the connection without an answer when
// dropLater is set: a server that closed a kept connection just as the
// request arrived.
type rawServer struct {
	ln        net.Listener
	dropLater bool
	mu        sync.Mutex
	bodies    []string // every request body it read
}

func newRawServer(t *testing.T, dropLater bool) *rawServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, dropLater: dropLater}
	t.Cleanup(func() { ln.Close() })
	go s.accept()
	return s
}

func (s *rawServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.serve(c)
	}
}

func (s *rawServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		if n > 0 && s.dropLater {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

func (s *rawServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func TestUpClientResendsWhatAKeptConnectionDropped(t *testing.T) {
	s := newRawServer(t, true)
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	roundTrip(t, u, s.url(), "first")
	if got := roundTrip(t, u, s.url(), "second"); got != "ok" {
		t.Fatalf("answer %q", got)
	}
	// The dropped connection saw "second" and closed; a new one answered it.
	if got := strings.Join(s.seen(), ","); got != "first,second,second" {
		t.Fatalf("the server read %s", got)
	}
}

func TestUpClientDoesNotResendOnANewConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reads atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				reads.Add(1)
			}
			c.Close() // no answer
		}
	}()
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	if _, err := upPost(t, u, context.Background(), "http://"+ln.Addr().String(), "x"); err == nil {
		t.Fatal("a connection closed without an answer gave no error")
	}
	if n := reads.Load(); n != 1 {
		t.Fatalf("the request was read %d times, want 1", n)
	}
}

func TestUpClientHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	u := newTestClient(time.Second, 50*time.Millisecond)
	defer u.Close()
	_, err := upPost(t, u, context.Background(), s.URL, "x")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || isDialError(err) {
		t.Fatalf("error %v, want a timeout that is not a dial error", err)
	}
}

func TestUpClientContextCutsTheExchange(t *testing.T) {
	started := make(chan struct{}, 2)
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // so that the server notices the connection closing
		if r.URL.Path == "/body" {
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
		}
		started <- struct{}{}
		<-r.Context().Done() // until the client goes away
	})
	u := newTestClient(time.Second, time.Minute)
	defer u.Close()

	// Waiting for the headers.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	if _, err := upPost(t, u, ctx, s.URL+"/head", "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting for headers: %v", err)
	}
	waitFor(t, "the server to see the connection closed", func() bool { return s.closed.Load() == 1 })

	// Reading the body.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	resp, err := upPost(t, u, ctx, s.URL+"/body", "x")
	if err != nil {
		t.Fatal(err)
	}
	<-started
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := resp.Body.Read(buf); err == nil {
		t.Fatal("a body read after the cancel succeeded")
	}
	resp.Body.Close()
	waitFor(t, "the server to see the second connection closed", func() bool { return s.closed.Load() == 2 })
}

func TestUpClientEarlyCloseDropsTheConnection(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		for range 100 {
			io.WriteString(w, strings.Repeat("x", 1000))
			w.(http.Flusher).Flush()
		}
	})
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	resp, err := upPost(t, u, context.Background(), s.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	waitFor(t, "the server to see the connection closed", func() bool { return s.closed.Load() == 1 })
	roundTrip(t, u, s.URL, "")
	if n := s.opened.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (a body closed early must not be reused)", n)
	}
}

func TestUpClientClosesIdleConnections(t *testing.T) {
	s := newCountingServer(t, echo)
	u := newTestClient(time.Second, time.Second)
	u.cfg.IdleTimeout = 20 * time.Millisecond
	defer u.Close()
	roundTrip(t, u, s.URL, "x")
	waitFor(t, "the idle connection to be closed", func() bool { return s.closed.Load() == 1 })

	roundTrip(t, u, s.URL, "x")
	u.Close()
	waitFor(t, "close to close the idle connection", func() bool { return s.closed.Load() == 2 })
	roundTrip(t, u, s.URL, "x") // after close: served, not kept
	waitFor(t, "a connection after close not to be kept", func() bool { return s.closed.Load() == 3 })
}

func TestUpClientRefusesHeaderInjection(t *testing.T) {
	s := newCountingServer(t, echo)
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader("x"))
	req.Header.Set("User-Agent", "a\r\nX-Moat-User: admin")
	if _, err := u.RoundTrip(req); err == nil {
		t.Fatal("a header value with CR LF was sent")
	}
	if n := s.opened.Load(); n != 0 {
		t.Fatalf("%d connections opened for a refused request", n)
	}
}

func TestUpClientDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	if _, err := upPost(t, u, context.Background(), "http://"+addr, "x"); !isDialError(err) {
		t.Fatalf("error %v, want a dial error", err)
	}
}

// BenchmarkUpstreamClient is what a request costs the client side: the
// Client against net/http's Transport (as the guard and router
// had it), 64 callers at once against a loopback server in this process,
// in turn; cpu-µs/op is the process's CPU time a request (the server's
// share is the same in both).
func BenchmarkUpstreamClient(b *testing.B) {
	answer := strings.Repeat("a", 400)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	body := []byte(benchBody)
	for _, c := range []struct {
		name string
		rt   func() http.RoundTripper
	}{
		{"transport", func() http.RoundTripper {
			return &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, DisableCompression: true}
		}},
		{"upclient", func() http.RoundTripper { return newTestClient(time.Second, time.Minute) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			rt := c.rt()
			b.SetParallelism(32) // 64 callers on 2 cores
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", bytes.NewReader(body))
					resp, err := rt.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

func newTestClient(dialTimeout, headerTimeout time.Duration) *Client {
	d := &net.Dialer{Timeout: dialTimeout}
	return New(Config{Dial: d.DialContext, HeaderTimeout: headerTimeout})
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchBody is a chat request of a typical size.
const benchBody = `{"model":"llama","max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant for the finance team. Answer briefly and cite the policy section when you can."},{"role":"user","content":"Our travel policy says economy class for flights under six hours. I have a 7 hour flight to Singapore next month for the quarterly review; which class may I book, and who needs to approve it? Please also list what receipts I must keep."}]}`
