package store_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func TestSecretsSQLite(t *testing.T)   { testSecrets(t, sqliteSchemaDB(t)) }
func TestSecretsPostgres(t *testing.T) { testSecrets(t, postgresSchemaDB(t)) }

// testSecrets: the first of two racing secrets wins, prefixes are plain
// (no wildcards), retired secrets are pruned only once due, and a
// re-seal that fails changes nothing.
func testSecrets(t *testing.T, db schemaDB) {
	s, err := db.open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, now := t.Context(), time.Now()
	add := func(name, value string, created time.Time) *store.Secret {
		t.Helper()
		got, err := s.AddSecret(ctx, &store.Secret{Name: name, Value: []byte(value), Created: created})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	add("k:a", "first", now)
	if got := add("k:a", "second", now); string(got.Value) != "first" {
		t.Fatalf("second AddSecret got %q; want the first value kept", got.Value)
	}
	add("k:b", "b", now.Add(time.Second))
	add("kxc", "not under k:", now)
	names := func(prefix string) (out []string) {
		ss, err := s.Secrets(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ss {
			out = append(out, x.Name)
		}
		return out
	}
	if got := names("k:"); len(got) != 2 || got[0] != "k:a" || got[1] != "k:b" {
		t.Fatalf("secrets under k: %v; want k:a, k:b oldest first", got)
	}
	if got := names("k_"); len(got) != 0 {
		t.Fatalf("secrets under k_ %v; want none (no wildcards)", got)
	}

	if err := s.RetireSecrets(ctx, "k:", "k:b", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneSecrets(ctx, "k:", now); err != nil || n != 0 {
		t.Fatalf("prune before due: %d, %v", n, err)
	}
	if n, err := s.PruneSecrets(ctx, "k:", now.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("prune when due: %d, %v", n, err)
	}
	if got := names("k:"); len(got) != 1 || got[0] != "k:b" {
		t.Fatalf("after pruning: %v", got)
	}

	cols := []store.SealedColumn{{Table: "secrets", Key: "name", Column: "value"}}
	boom := errors.New("cannot open")
	_, err = s.Reseal(ctx, cols, func(_ store.SealedColumn, key string, v []byte) ([]byte, error) {
		if key == "kxc" {
			return nil, boom
		}
		return append([]byte("new "), v...), nil
	}, "id", []byte("2"))
	if !errors.Is(err, boom) {
		t.Fatalf("failing re-seal: %v", err)
	}
	if b, _ := s.Secret(ctx, "k:b"); !bytes.Equal(b.Value, []byte("b")) {
		t.Fatalf("a failed re-seal changed k:b to %q", b.Value)
	}
	n, err := s.Reseal(ctx, cols, func(_ store.SealedColumn, _ string, v []byte) ([]byte, error) {
		return append([]byte("new "), v...), nil
	}, "id", []byte("2"))
	if b, _ := s.Secret(ctx, "k:b"); err != nil || n != 2 || string(b.Value) != "new b" {
		t.Fatalf("re-seal: %d, %v, k:b = %q", n, err, b.Value)
	}
	if v, err := s.Setting(ctx, "id"); err != nil || string(v) != "2" {
		t.Fatalf("re-seal's setting: %q, %v", v, err)
	}
}
