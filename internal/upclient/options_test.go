package upclient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMaxConnsMakesRequestsWait(t *testing.T) {
	release := make(chan struct{})
	var inside, most atomic.Int64
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := inside.Add(1)
		defer inside.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		io.WriteString(w, "ok")
	})
	u := New(Config{Dial: (&net.Dialer{}).DialContext, MaxConns: 2})
	defer u.Close()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if got := roundTrip(t, u, s.URL, "x"); got != "ok" {
				t.Errorf("answer %q", got)
			}
		})
	}
	waitFor(t, "two requests to reach the server", func() bool { return inside.Load() == 2 })
	// A request beyond the bound gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := upPost(t, u, ctx, s.URL, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request waiting for a slot: %v, want its context's end", err)
	}
	close(release)
	wg.Wait()
	if m, n := most.Load(), s.opened.Load(); m != 2 || n != 2 {
		t.Fatalf("%d requests at once on %d connections, want 2 and 2", m, n)
	}
}

func TestTraceIsTold(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "ok")
	})
	u := newTestClient(time.Second, time.Second)
	defer u.Close()
	for _, want := range []string{
		"get,conn reused=false,headers,request,first,1xx 103,",
		"get,conn reused=true,headers,request,first,1xx 103,",
	} {
		var mu sync.Mutex
		var got strings.Builder
		note := func(s string) { mu.Lock(); got.WriteString(s + ","); mu.Unlock() }
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GetConn:              func(string) { note("get") },
			GotConn:              func(i httptrace.GotConnInfo) { note("conn reused=" + strconv.FormatBool(i.Reused)) },
			WroteHeaders:         func() { note("headers") },
			WroteRequest:         func(httptrace.WroteRequestInfo) { note("request") },
			GotFirstResponseByte: func() { note("first") },
			Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				note("1xx " + strconv.Itoa(code))
				return nil
			},
		})
		resp, err := upPost(t, u, ctx, s.URL, "x")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if got.String() != want {
			t.Fatalf("trace %q, want %q", got.String(), want)
		}
	}
}

func TestAliveDecidesReuse(t *testing.T) {
	s := newCountingServer(t, echo)
	var alive atomic.Bool
	u := New(Config{Dial: (&net.Dialer{}).DialContext, Alive: func(net.Conn) bool { return alive.Load() }})
	defer u.Close()
	roundTrip(t, u, s.URL, "x")
	roundTrip(t, u, s.URL, "x") // the kept one was judged closed
	alive.Store(true)
	roundTrip(t, u, s.URL, "x")
	if n := s.opened.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	u.CloseIdleConnections()
	waitFor(t, "the idle connection to be closed", func() bool { return s.closed.Load() == 2 })
	roundTrip(t, u, s.URL, "x")
	roundTrip(t, u, s.URL, "x")
	if n := s.opened.Load(); n != 3 {
		t.Fatalf("%d connections after CloseIdleConnections, want 3 (it keeps the client usable)", n)
	}
}
