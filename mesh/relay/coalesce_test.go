package relay

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// slowConn records its writes; each write waits for release (a kernel
// busy sending) and fails once failWith is set.
type slowConn struct {
	net.Conn
	mu        sync.Mutex
	writes    [][]byte
	release   chan struct{}
	failWith  error
	deadlines []time.Time
}

func (s *slowConn) Write(b []byte) (int, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failWith != nil {
		return 0, s.failWith
	}
	s.writes = append(s.writes, append([]byte(nil), b...))
	return len(b), nil
}

func (s *slowConn) Close() error { return nil }

// SetWriteDeadline records the deadlines it is given.
func (s *slowConn) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadlines = append(s.deadlines, t)
	return nil
}

func (s *slowConn) got() (n int, all []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes), bytes.Join(s.writes, nil)
}

// Frames written while the connection is busy go out in one write, in
// order; an idle connection's frame is written at once.
func TestCoalesceBatchesWhileBusy(t *testing.T) {
	sc := &slowConn{release: make(chan struct{}, 100)}
	c := newCoalesceConn(sc)
	sc.release <- struct{}{}
	c.Write([]byte("a")) // idle: written at once
	waitFor(t, "the first write", func() bool { n, _ := sc.got(); return n == 1 })

	c.Write([]byte("b")) // the writer takes it and blocks in the kernel
	waitFor(t, "the writer to take b", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.pending == nil })
	for _, f := range []string{"c", "d", "e"} {
		c.Write([]byte(f))
	}
	sc.release <- struct{}{}
	sc.release <- struct{}{}
	waitFor(t, "all frames", func() bool { _, all := sc.got(); return len(all) == 5 })
	n, all := sc.got()
	if string(all) != "abcde" || n != 3 {
		t.Fatalf("written %q in %d writes, want abcde in 3 (a, b, cde)", all, n)
	}
}

// A member that does not read holds at most coalesceMax pending: Write
// then waits, and a failed write is returned by the next Write.
func TestCoalesceBoundAndError(t *testing.T) {
	sc := &slowConn{release: make(chan struct{})}
	c := newCoalesceConn(sc)
	frame := make([]byte, 1500)
	c.Write(frame) // taken by the writer, which blocks
	waitFor(t, "the writer to take the first frame", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.pending == nil })
	for range coalesceMax / len(frame) {
		c.Write(frame)
	}
	blocked := make(chan error)
	go func() { _, err := c.Write(frame); blocked <- err }()
	select {
	case err := <-blocked:
		t.Fatalf("Write past the bound returned %v, want it to wait", err)
	case <-time.After(50 * time.Millisecond):
	}
	gone := errors.New("peer gone")
	sc.mu.Lock()
	sc.failWith = gone
	sc.mu.Unlock()
	close(sc.release)
	if err := <-blocked; !errors.Is(err, gone) {
		t.Fatalf("waiting Write returned %v, want the write error", err)
	}
	if _, err := c.Write(frame); !errors.Is(err, gone) {
		t.Fatalf("Write after the failure returned %v, want the write error", err)
	}
}

// After Close, Write fails and a waiting Write is let go.
func TestCoalesceClose(t *testing.T) {
	sc := &slowConn{release: make(chan struct{})}
	c := newCoalesceConn(sc)
	c.Write(make([]byte, coalesceMax)) // the writer blocks on it
	waitFor(t, "the writer to take it", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.pending == nil })
	c.Write(make([]byte, coalesceMax))
	blocked := make(chan error)
	go func() { _, err := c.Write([]byte("x")); blocked <- err }()
	c.Close()
	if err := <-blocked; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write waiting at Close returned %v, want net.ErrClosed", err)
	}
	close(sc.release)
	if _, err := c.Write([]byte("y")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close returned %v", err)
	}
}

// Write deadlines set between writes reach the connection once per
// write, the latest of them, before the write.
func TestCoalesceWriteDeadline(t *testing.T) {
	sc := &slowConn{release: make(chan struct{}, 100)}
	c := newCoalesceConn(sc)
	t0 := time.Now()
	c.SetWriteDeadline(t0.Add(time.Second))
	sc.release <- struct{}{}
	c.Write([]byte("a"))
	waitFor(t, "the first write", func() bool { n, _ := sc.got(); return n == 1 })

	c.Write([]byte("b")) // the writer blocks in it (no release yet)
	waitFor(t, "the writer to take b", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.pending == nil })
	for i := range 3 {
		c.SetWriteDeadline(t0.Add(time.Duration(2+i) * time.Second))
		c.Write([]byte("c"))
	}
	sc.release <- struct{}{}
	sc.release <- struct{}{}
	waitFor(t, "all frames", func() bool { _, all := sc.got(); return len(all) == 5 })
	sc.mu.Lock()
	got := sc.deadlines
	sc.mu.Unlock()
	want := []time.Time{t0.Add(time.Second), t0.Add(4 * time.Second)}
	if len(got) != len(want) || !got[0].Equal(want[0]) || !got[1].Equal(want[1]) {
		t.Fatalf("deadlines applied %v, want %v (a and b under the first, cs under the last)", got, want)
	}
}

// A deadline that passes fails the write, and the Writes after it.
func TestCoalesceDeadlinePasses(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close() // b never reads: a member that does not
	c := newCoalesceConn(a)
	c.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	c.Write([]byte("frame"))
	var err error
	waitFor(t, "the write to time out", func() bool { _, err = c.Write([]byte("more")); return err != nil })
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write after the deadline returned %v, want os.ErrDeadlineExceeded", err)
	}
}
