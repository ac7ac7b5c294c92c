package client

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "StateDir is required"},
		{Config{StateDir: dir, Listen: "0.0.0.0:0"}, ErrNotLoopback.Error()},
		{Config{StateDir: dir, Listen: "nonsense"}, "want HOST:PORT"},
		{Config{StateDir: dir, Listen: "127.0.0.1:0"}, ErrNoLogin.Error()},
	} {
		c, err := New(tc.cfg)
		if err == nil {
			c.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestControlSocket: a client whose coordinator cannot be reached says
// so to Notify and on GET /status, refuses a second client on its
// directory, and stops on Down.
func TestControlSocket(t *testing.T) {
	dir := Dir(filepath.Join(t.TempDir(), "state"))
	if _, err := dir.DeviceKey(true); err != nil {
		t.Fatal(err)
	}
	if err := dir.SaveLogin(&Login{Coordinator: "http://127.0.0.1:1", Credential: "moat_dc_test"}); err != nil {
		t.Fatal(err)
	}
	notes := make(chan string, 8)
	c, err := New(Config{StateDir: string(dir), Listen: "127.0.0.1:0", Notify: func(m string) { notes <- m }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(context.Background()) }()

	select {
	case m := <-notes:
		if !strings.Contains(m, "cannot reach the coordinator at http://127.0.0.1:1") {
			t.Fatalf("first note %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no note about the unreachable coordinator")
	}
	st, err := FetchStatus(context.Background(), dir)
	if err != nil || st.Connected || !strings.Contains(st.Problem, "cannot reach") || st.Endpoint != c.Endpoint() {
		t.Fatalf("status %+v, %v", st, err)
	}
	if second, err := New(Config{StateDir: string(dir), Listen: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "already running") {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second client on the same directory: %v", err)
	}
	if err := Down(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run after Down = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Down")
	}
	if _, err := FetchStatus(context.Background(), dir); !errors.Is(err, ErrNotUp) {
		t.Fatalf("status after Down: %v, want ErrNotUp", err)
	}
}
