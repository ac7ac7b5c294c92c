package coordinator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// The erasure log lists every erasure (GDPR Art. 17) as one JSON line,
// {"user":"u_…","time":"…"}: the person's id (no name, no email) and when
// their prompt key was destroyed. It is written, and synced, before the
// key is destroyed, in a file meant to sit with the backups
// (Config.ErasureLog), so that Restore can destroy again the keys of
// people erased after the backup was taken. It holds no secret.

// ErasureLogFile is Config.ErasureLog's default name in DataDir.
const ErasureLogFile = "erasures.jsonl"

// erasure is one line of the erasure log.
type erasure struct {
	User string    `json:"user"`
	Time time.Time `json:"time"`
}

// erasureLog is cfg's erasure log.
func erasureLog(cfg Config) string {
	if cfg.ErasureLog != "" {
		return cfg.ErasureLog
	}
	dir := cfg.DataDir
	if dir == "" {
		dir = DefaultDataDir
	}
	return filepath.Join(dir, ErasureLogFile)
}

// logErasure appends e to the log at path and syncs it.
func logErasure(path string, e erasure) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("erasure log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("erasure log: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("erasure log %s: %w", path, err)
	}
	return nil
}

// readErasures returns the erasures logged at path; none when it does
// not exist.
func readErasures(path string) ([]erasure, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("erasure log: %w", err)
	}
	defer f.Close()
	var out []erasure
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e erasure
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.User == "" {
			return nil, fmt.Errorf("erasure log %s line %d: not an erasure", path, len(out)+1)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// replayErasures destroys, in st, the prompt key of every person the
// log at path lists whose key is not destroyed there yet (they were
// erased after the backup st was restored from), writing each to the
// admin trail. It returns how many it destroyed.
func replayErasures(ctx context.Context, st *store.DB, path string, now time.Time) (int, error) {
	es, err := readErasures(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		k, err := st.PersonKey(ctx, e.User)
		if err == nil && !k.Erased.IsZero() {
			continue
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		if err := st.ErasePersonKey(ctx, e.User, e.Time); err != nil {
			return n, err
		}
		if err := st.LogAdminAction(ctx, &store.AdminAction{Time: now, Actor: CLIActor(), Action: ActionUserErase, Target: e.User,
			Detail: fmt.Sprintf("replayed on restore from the erasure log %s: prompt key destroyed (first erased %s)", path, e.Time.Format(time.RFC3339))}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
