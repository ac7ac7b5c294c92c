package coordinator

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

// A backup is a gzipped tar archive of backupManifest, a consistent
// snapshot of the SQLite database (which holds every secret, sealed)
// and, only when asked, the seal key. Without the seal key a backup
// cannot be used: keep the key apart from the backups (see
// docs/operations.md).
const (
	backupManifest = "moat-backup.json"
	backupDB       = "moat.db"
	backupSealKey  = "seal.key"
)

// BackupInfo is a backup's manifest.
type BackupInfo struct {
	Created       time.Time `json:"created"`
	SchemaVersion int       `json:"schema_version"`
	// SealKeyID is the id of the key the backup's secrets are sealed under.
	SealKeyID string `json:"seal_key_id"`
	// WithSealKey is true when the archive holds the seal key itself.
	WithSealKey bool `json:"with_seal_key"`
	// ErasuresReplayed is, after Restore, how many erasures from the
	// erasure log (Config.ErasureLog) it made again; never in a manifest.
	ErasuresReplayed int `json:"-"`
}

// Backup writes a backup of cfg's SQLite database to out (mode 0600; it
// must not exist), with the seal key when withSealKey. The servers may
// keep running. PostgreSQL is backed up with pg_dump instead
// (store.ErrNoSnapshot).
func Backup(ctx context.Context, cfg Config, out string, withSealKey bool) (BackupInfo, error) {
	info := BackupInfo{Created: time.Now().UTC(), WithSealKey: withSealKey}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".moat-backup-*")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	snap := filepath.Join(tmp, backupDB)
	var key [seal.KeySize]byte
	err = withSecrets(ctx, cfg, func(st *store.DB, _ *seal.Box) error {
		key, _, err = sealKey(cfg, "", true) // openBox checked it
		if err != nil {
			return err
		}
		if err := st.Snapshot(ctx, snap); err != nil {
			return err
		}
		schema, err := st.Schema(ctx)
		info.SchemaVersion, info.SealKeyID = schema.Version, seal.KeyID(key)
		return err
	})
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	files := []archived{{name: backupDB, path: snap}}
	if withSealKey {
		files = append(files, archived{name: backupSealKey, data: key[:]})
	}
	if err := writeArchive(out, info, files); err != nil {
		return info, err
	}
	detail := fmt.Sprintf("to %s, schema %d, seal key included: %t", out, info.SchemaVersion, withSealKey)
	return info, withSecrets(ctx, cfg, func(st *store.DB, _ *seal.Box) error {
		return RecordCLIAction(ctx, st, actionBackup, "database", detail)
	})
}

// archived is one file of a backup: from path, or data.
type archived struct {
	name, path string
	data       []byte
}

func writeArchive(out string, info BackupInfo, files []archived) error {
	manifest, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	err = writeTar(f, append([]archived{{name: backupManifest, data: manifest}}, files...))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

func writeTar(w io.Writer, files []archived) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, a := range files {
		if err := addFile(tw, a); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func addFile(tw *tar.Writer, a archived) error {
	var r io.Reader
	size := int64(len(a.data))
	if a.path != "" {
		f, err := os.Open(a.path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		r, size = f, fi.Size()
	} else {
		r = bytes.NewReader(a.data)
	}
	hdr := &tar.Header{Name: a.name, Mode: 0o600, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

// Restore unpacks the backup in into cfg.DataDir, which must hold no
// database yet, and checks that the seal key (cfg.SealKey, the data
// dir's seal.key, or the one in the backup when it holds one and
// neither is there) opens its secrets; when it does not, the restored
// database is removed again. Then it destroys again the prompt keys of
// the people the erasure log (Config.ErasureLog) lists that the backup
// still holds. PostgreSQL is restored with pg_restore
// instead.
func Restore(ctx context.Context, cfg Config, in string) (BackupInfo, error) {
	var info BackupInfo
	if cfg.Database != "" {
		return info, fmt.Errorf("restore: %w", store.ErrNoSnapshot)
	}
	dbPath := filepath.Join(cfg.DataDir, backupDB)
	if _, err := os.Lstat(dbPath); err == nil {
		return info, fmt.Errorf("restore: %s already holds a database; restore onto a fresh data dir", cfg.DataDir)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	info, key, err := unpack(in, dbPath)
	if err != nil {
		return info, fmt.Errorf("restore %s: %w", in, err)
	}
	keyPath := filepath.Join(cfg.DataDir, SealKeyFile)
	if key != nil && cfg.SealKey == ([seal.KeySize]byte{}) && !fileExists(keyPath) {
		if err := os.WriteFile(keyPath, key, 0o600); err != nil {
			return info, fmt.Errorf("restore: %w", err)
		}
	}
	err = withSecrets(ctx, cfg, func(st *store.DB, _ *seal.Box) error {
		log := erasureLog(cfg)
		n, err := replayErasures(ctx, st, log, time.Now())
		if err != nil {
			return err
		}
		info.ErasuresReplayed = n
		detail := fmt.Sprintf("from %s, taken %s; %d erasures made after it replayed from the erasure log %s", in, info.Created.Format(time.RFC3339), n, log)
		return RecordCLIAction(ctx, st, actionRestore, "database", detail)
	})
	if err != nil {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(dbPath + suffix) // so that a second try, with the key, can restore
		}
		return info, fmt.Errorf("restore: %w", err)
	}
	return info, nil
}

// unpack reads the archive at in, writing its database to dbPath, and
// returns its manifest and the seal key it holds, if any.
func unpack(in, dbPath string) (info BackupInfo, key []byte, err error) {
	f, err := os.Open(in)
	if err != nil {
		return info, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return info, nil, fmt.Errorf("not a moat backup: %w", err)
	}
	tr := tar.NewReader(zr)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return info, nil, err
		}
		seen[hdr.Name] = true
		switch hdr.Name {
		case backupManifest:
			err = json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&info)
		case backupSealKey:
			key, err = io.ReadAll(io.LimitReader(tr, 256))
		case backupDB:
			err = writeNew(dbPath, tr)
		}
		if err != nil {
			os.Remove(dbPath)
			return info, nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	if !seen[backupManifest] || !seen[backupDB] {
		os.Remove(dbPath)
		return info, nil, fmt.Errorf("not a moat backup: want %s and %s", backupManifest, backupDB)
	}
	return info, key, nil
}

// writeNew writes r to path, which must not exist, with mode 0600.
func writeNew(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists", path)
	}
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
