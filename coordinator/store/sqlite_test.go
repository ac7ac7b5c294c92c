package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/coordinator/store/storetest"
)

func openSQLite(t *testing.T, path string) *store.DB {
	t.Helper()
	s, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "moat.db"))
	})
}

func TestSQLiteRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moat.db")
	storetest.RunRestart(t, func(t *testing.T) storetest.Store { return openSQLite(t, path) })
}

// TestSQLiteFileModeAndPath: the data directory and database are private,
// and the database is where the path says even when it needs escaping.
func TestSQLiteFileModeAndPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "moat data%20?#") // characters a SQLite URI must escape
	s, err := store.Open(t.Context(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, "moat.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
}
