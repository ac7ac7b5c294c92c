package audit

import (
	"sync"
	"testing"
	"time"
)

func TestQueueWritesEverythingInOrderOfSeq(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := NewQueue(s, QueueOptions{Size: 8})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				if err := q.Append(&Record{Decision: DecisionAllow, Model: "m", TokensIn: int64(g*1000 + i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	q.Close()
	if s.Seq() != 1000 {
		t.Fatalf("seq %d, want 1000", s.Seq())
	}
	if err := Verify(dir); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := q.Append(&Record{Decision: DecisionAllow}); err != nil || s.Seq() != 1001 {
		t.Fatalf("append after close: %v, seq %d", err, s.Seq())
	}
}

// blockingSink holds every write until released.
type blockingSink struct {
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (b *blockingSink) Append(*Record) error {
	<-b.release
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	return nil
}

func TestQueueFullWritesSynchronously(t *testing.T) {
	b := &blockingSink{release: make(chan struct{})}
	q := NewQueue(b, QueueOptions{Size: 1})
	done := make(chan struct{})
	go func() {
		for range 5 {
			q.Append(&Record{})
		}
		close(done)
	}()
	// The writer holds record 1, the queue record 2; record 3 overflows.
	deadline := time.Now().Add(10 * time.Second)
	for q.Overflows() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no overflow")
		}
		<-time.After(time.Millisecond)
	}
	close(b.release)
	<-done
	q.Close()
	if b.n != 5 {
		t.Fatalf("%d records written, want 5", b.n)
	}
}
