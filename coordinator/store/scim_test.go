package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
)

func TestSCIMSQLite(t *testing.T) {
	testSCIM(t, openSQLite(t, filepath.Join(t.TempDir(), "moat.db")))
}

func TestSCIMPostgres(t *testing.T) {
	testSCIM(t, openPostgres(t, pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests"))))
}

func testSCIM(t *testing.T, s *store.DB) {
	ctx := context.Background()
	t.Run("tokens", func(t *testing.T) {
		tok := &store.SCIMToken{Hash: []byte("h1"), Name: "entra", CreatedBy: "cli", Expiry: time.Now().Add(time.Hour)}
		if err := s.CreateSCIMToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.SCIMTokenByHash(ctx, []byte("h1")); err != nil || got.ID != tok.ID || got.Name != "entra" {
			t.Fatalf("by hash: %+v %v", got, err)
		}
		if err := s.DeleteSCIMToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SCIMTokenByHash(ctx, []byte("h1")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted token: %v", err)
		}
		if err := s.DeleteSCIMToken(ctx, tok.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting again: %v", err)
		}
	})
	t.Run("users and groups", func(t *testing.T) {
		a := &store.SCIMUser{UserName: "Alice@Example.com", Email: "alice@example.com", Active: true, Attrs: []byte(`{}`)}
		b := &store.SCIMUser{UserName: "bob@example.com", Active: true, Attrs: []byte(`{}`)}
		for _, u := range []*store.SCIMUser{a, b} {
			if err := s.PutSCIMUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutSCIMUser(ctx, &store.SCIMUser{UserName: "alice@example.com", Attrs: []byte(`{}`)}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a second alice: %v, want ErrConflict", err)
		}
		g := &store.SCIMGroup{DisplayName: "ml", Attrs: []byte(`{}`), Members: []string{a.ID, b.ID, "su_unknown"}}
		if err := s.PutSCIMGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SCIMGroup(ctx, g.ID); len(got.Members) != 2 {
			t.Fatalf("members %v: want alice and bob, not the unknown id", got.Members)
		}
		if names, _ := s.SCIMGroupNames(ctx, a.ID); !slices.Equal(names, []string{"ml"}) {
			t.Fatalf("alice's groups %v", names)
		}
		if err := s.DeleteSCIMUser(ctx, a.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if us, _ := s.SCIMUsersByEmail(ctx, "ALICE@example.com"); len(us) != 1 || !us[0].Deleted || us[0].Active {
			t.Fatalf("alice's tombstone: %+v", us)
		}
		if got, _ := s.SCIMGroup(ctx, g.ID); !slices.Equal(got.Members, []string{b.ID}) {
			t.Fatalf("members after deleting alice: %v", got.Members)
		}
		if us, _ := s.SCIMUsers(ctx); len(us) != 1 || us[0].ID != b.ID {
			t.Fatalf("live users %+v: want bob only", us)
		}
		again := &store.SCIMUser{UserName: "alice@example.com", Active: true, Attrs: []byte(`{}`)}
		if err := s.PutSCIMUser(ctx, again); err != nil {
			t.Fatalf("provisioning alice again: %v", err)
		}
		if us, _ := s.SCIMUsersByEmail(ctx, "alice@example.com"); len(us) != 1 || us[0].ID != again.ID || us[0].Deleted {
			t.Fatalf("alice again: %+v", us)
		}
		if err := s.DeleteSCIMGroup(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if names, _ := s.SCIMGroupNames(ctx, b.ID); len(names) != 0 {
			t.Fatalf("bob's groups after the group is deleted: %v", names)
		}
	})
}
