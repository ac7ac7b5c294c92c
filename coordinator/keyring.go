package coordinator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

// The coordinator's own secrets (the embedded provider's client secret
// and signing keys, the self-signed TLS key) live in the database's
// secrets table, sealed under the seal key, so that every replica shares
// them. The seal key itself is never in the database: each replica is
// given it (Config.SealKey), or finds it in DataDir/seal.key. The
// database records the key's id (seal.KeyID), so that a replica with a
// missing or different key is refused with a message saying which.

const (
	// settingSealKeyID is the setting holding the seal key's id, in clear.
	settingSealKeyID = "seal-key-id"
	// SealKeyFile is the seal key's file in the data directory: the key
	// of a single-machine coordinator given none.
	SealKeyFile = "seal.key"
)

// ErrSealKey is returned (wrapped) when the seal key is missing or is
// not the key the database's secrets are sealed under.
var ErrSealKey = errors.New("seal key")

// openBox returns a box sealing under the configured seal key, after
// checking that it is the key the database's secrets are sealed under.
// On first start it records the key's id.
func openBox(ctx context.Context, cfg Config, st *store.DB) (*seal.Box, error) {
	recorded, err := st.Setting(ctx, settingSealKeyID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	secrets, err := st.Secrets(ctx, "")
	if err != nil {
		return nil, err
	}
	key, source, err := sealKey(cfg, string(recorded), len(recorded) > 0 || len(secrets) > 0)
	if err != nil {
		return nil, err
	}
	box, id := seal.New(key), seal.KeyID(key)
	if len(recorded) > 0 {
		if string(recorded) != id {
			return nil, wrongSealKey(source, id, string(recorded))
		}
		return box, nil
	}
	// No id yet: a first start, or a database from before ids were
	// recorded. The key must open what is already sealed.
	for _, sec := range secrets {
		if _, err := box.Open(sec.Value, secretAD(sec.Name)); err != nil {
			return nil, fmt.Errorf("wrong %w: %s does not open this database's secret %s: give this replica the seal key the database was made with (--seal-key-file, MOAT_SEAL_KEY)", ErrSealKey, source, sec.Name)
		}
	}
	got, err := st.AddSetting(ctx, settingSealKeyID, []byte(id))
	if err != nil {
		return nil, err
	}
	if string(got) != id { // another replica, starting with another key, was first
		return nil, wrongSealKey(source, id, string(got))
	}
	return box, nil
}

func wrongSealKey(source, id, want string) error {
	return fmt.Errorf("wrong %w: %s is seal key %s, but this database's secrets are sealed under seal key %s; give every replica the same seal key (--seal-key-file, MOAT_SEAL_KEY or the seal-key-file config key); after a restore, the key kept with the backup",
		ErrSealKey, source, id, want)
}

// sealKey returns the configured seal key and where it came from. With
// none configured it is DataDir/seal.key, created when missing unless
// the database already holds secrets (then it must be the key they are
// sealed under, which a new one is not).
func sealKey(cfg Config, recorded string, sealed bool) ([seal.KeySize]byte, string, error) {
	if cfg.SealKey != ([seal.KeySize]byte{}) {
		source := cfg.SealKeySource
		if source == "" {
			source = "the seal key given"
		}
		return cfg.SealKey, source, nil
	}
	path := filepath.Join(cfg.DataDir, SealKeyFile)
	if sealed {
		key, err := seal.LoadKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			if recorded == "" {
				recorded = "(not recorded)"
			}
			return key, "", fmt.Errorf("%w missing: this database's secrets are sealed under seal key %s, and this replica has none (no --seal-key-file, no MOAT_SEAL_KEY, and %s does not exist); give it the seal key every replica uses with --seal-key-file FILE or MOAT_SEAL_KEY, or copy that key to %s",
				ErrSealKey, recorded, path, path)
		}
		return key, path, err
	}
	key, err := seal.LoadOrCreateKey(path)
	return key, path, err
}

// secretAD is the additional data a secret is sealed with; the name
// "setting:" stays from when these lived in the settings table.
func secretAD(name string) []byte { return []byte("setting:" + name) }

// sharedSecret returns the secret called name, opened, making it with
// make on first use. Replicas that make it at the same time all end up
// with the first one stored.
func sharedSecret(ctx context.Context, st *store.DB, box *seal.Box, name string, make func() ([]byte, error)) ([]byte, error) {
	sec, err := st.Secret(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		var v []byte
		if v, err = make(); err != nil {
			return nil, fmt.Errorf("make %s: %w", name, err)
		}
		sec, err = st.AddSecret(ctx, &store.Secret{Name: name, Value: box.Seal(v, secretAD(name)), Created: time.Now()})
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	v, err := box.Open(sec.Value, secretAD(name))
	if err != nil {
		return nil, fmt.Errorf("%w: unseal %s: %w", ErrSealKey, name, err)
	}
	return v, nil
}

// random32 makes a random 32-byte secret.
func random32() ([]byte, error) {
	v := make([]byte, 32)
	rand.Read(v)
	return v, nil
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
