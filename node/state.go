package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/member"
	"github.com/moatmesh/moat/mesh/wire"
)

// state is what a node keeps between runs, in StateDir/node.json (0600):
// its WireGuard key and its credential, so a restart needs no new
// enrollment key.
type state struct {
	PrivateKey  string        `json:"privateKey"`
	Credential  wire.Secret   `json:"credential"`
	DeviceID    wire.DeviceID `json:"deviceId"`
	Coordinator string        `json:"coordinator"`
	// CredentialIssued and CredentialExpiry bound Credential's lifetime
	// (the coordinator's clock); zero from a node or coordinator from
	// before credentials expired (credential.go).
	CredentialIssued time.Time `json:"credentialIssued,omitzero"`
	CredentialExpiry time.Time `json:"credentialExpiry,omitzero"`

	key key.Private
}

func statePath(dir string) string { return filepath.Join(dir, "node.json") }

// loadState reads the node's state, or makes a fresh key when there is
// none yet.
func loadState(dir string) (*state, error) {
	if err := member.EnsureDir(dir); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		k, err := key.NewPrivate()
		if err != nil {
			return nil, err
		}
		return &state{PrivateKey: k.Text(), key: k}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read node state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("node state %s is damaged (%v); remove it and join again", statePath(dir), err)
	}
	if st.key, err = key.ParsePrivate(st.PrivateKey); err != nil {
		return nil, fmt.Errorf("node state %s: %w", statePath(dir), err)
	}
	return &st, nil
}

// save writes the state atomically and durably, mode 0600.
func (st *state) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return member.WriteFile(statePath(dir), b)
}

// counterFile keeps the guard's day counters in StateDir/limits.json
// (guard.CounterStore), written like the state: atomically and durably.
type counterFile string

func (f counterFile) Load() ([]byte, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (f counterFile) Save(b []byte) error { return member.WriteFile(string(f), b) }
