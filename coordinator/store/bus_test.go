package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
)

// listenFor runs b.Listen until the test ends, sending what it hears to
// the returned channel, and waits until it listens.
func listenFor(t *testing.T, b *store.Bus) (msgs <-chan string, errc <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m, e, ready, done := make(chan string, 16), make(chan error, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		e <- b.Listen(ctx, func() { close(ready) }, func(s string) { m <- s })
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-e:
		t.Fatalf("listen: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening after 10 s")
	}
	return m, e
}

func want(t *testing.T, msgs <-chan string, msg string) {
	t.Helper()
	select {
	case got := <-msgs:
		if got != msg {
			t.Fatalf("heard %q, want %q", got, msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%q not heard within 10 s", msg)
	}
}

// testBus: a message published through one store reaches the listeners
// of every store on the same database, in order; one published on a
// topic reaches only that topic's listeners.
func testBus(t *testing.T, a, b *store.DB) {
	busA, err := a.Bus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	busB, err := b.Bus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	heardA, _ := listenFor(t, busA)
	heardB, _ := listenFor(t, busB)
	for _, m := range []string{"one", "two"} {
		if err := busB.Publish(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, heard := range []<-chan string{heardA, heardB} {
		want(t, heard, "one")
		want(t, heard, "two")
	}

	heardTopic, _ := listenFor(t, busA.Topic("relay"))
	if err := busB.Topic("relay").Publish(t.Context(), "on the topic"); err != nil {
		t.Fatal(err)
	}
	if err := busB.Publish(t.Context(), "three"); err != nil {
		t.Fatal(err)
	}
	want(t, heardTopic, "on the topic")
	want(t, heardA, "three") // not the topic's message
}

func TestSQLiteBus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moat.db")
	a, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	testBus(t, a, b)
}

func TestPostgresBus(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests"))
	testBus(t, openPostgres(t, u), openPostgres(t, u))
}

// TestPostgresBusLost: when the listening connection is killed, Listen
// says so, and listening again hears new messages.
func TestPostgresBusLost(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests"))
	s := openPostgres(t, u)
	bus, err := s.Bus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, errc := listenFor(t, bus)
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1",
		"LISTEN \""+bus.Channel()+"\""); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Listen after its connection was killed: %v, want an error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not notice its connection was killed")
	}
	heard, _ := listenFor(t, bus)
	if err := bus.Publish(t.Context(), "again"); err != nil {
		t.Fatal(err)
	}
	want(t, heard, "again")
}
