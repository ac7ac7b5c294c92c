package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// The files in the state directory. All are 0600 in a 0700 directory.
const (
	keyFile    = "device.key" // the WireGuard private key, base64; never leaves the device
	loginFile  = "login.json" // the coordinator and this device's credential
	socketFile = "moat.sock"  // `moat up`'s control socket (status, down)
)

// stateDir is where moat keeps its files.
type stateDir string

// resolveStateDir picks --state-dir, then $MOAT_STATE_DIR, then the user's
// config directory.
func resolveStateDir(flagValue string) (stateDir, error) {
	dir := flagValue
	if dir == "" {
		dir = os.Getenv("MOAT_STATE_DIR")
	}
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the config directory: %w; set --state-dir or MOAT_STATE_DIR", err)
		}
		dir = filepath.Join(base, "moat")
	}
	return stateDir(dir), nil
}

func (d stateDir) path(name string) string { return filepath.Join(string(d), name) }

// ensure creates the directory (0700) and tightens its mode if needed.
func (d stateDir) ensure() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return os.Chmod(string(d), 0o700)
}

// writeFile replaces name atomically with data, mode 0600.
func (d stateDir) writeFile(name string, data []byte) error {
	if err := d.ensure(); err != nil {
		return err
	}
	f, err := os.CreateTemp(string(d), "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), d.path(name))
}

// deviceKey loads the device's private key, making one on first use.
func (d stateDir) deviceKey(create bool) (key.Private, error) {
	b, err := os.ReadFile(d.path(keyFile))
	switch {
	case err == nil:
		k, err := key.ParsePrivate(strings.TrimSpace(string(b)))
		if err != nil {
			return key.Private{}, fmt.Errorf("%s: %w", d.path(keyFile), err)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist) || !create:
		return key.Private{}, err
	}
	k, err := key.NewPrivate()
	if err != nil {
		return key.Private{}, err
	}
	if err := d.writeFile(keyFile, []byte(k.Text()+"\n")); err != nil {
		return key.Private{}, fmt.Errorf("save the device key: %w", err)
	}
	return k, nil
}

// login is what `moat login` saves.
type login struct {
	Coordinator string        `json:"coordinator"`
	Fingerprint string        `json:"fingerprint,omitempty"`
	Credential  wire.Secret   `json:"credential"`
	DeviceID    wire.DeviceID `json:"deviceId"`
	Addresses   []netip.Addr  `json:"addresses"`
	Expiry      time.Time     `json:"expiry"`
	Identity    wire.Identity `json:"identity"`
	SignedIn    time.Time     `json:"signedIn"`
}

// errNoLogin means `moat login` has not been run (or `moat logout` was).
var errNoLogin = errors.New("this device is not signed in; run `moat login --coordinator URL`")

func (d stateDir) loadLogin() (*login, error) {
	b, err := os.ReadFile(d.path(loginFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoLogin
	}
	if err != nil {
		return nil, err
	}
	var l login
	if err := json.Unmarshal(b, &l); err != nil || l.Credential == "" {
		return nil, fmt.Errorf("%s is damaged; run `moat login` again", d.path(loginFile))
	}
	return &l, nil
}

func (d stateDir) saveLogin(l *login) error {
	b, err := json.MarshalIndent(l, "", "  ") // a Secret encodes as its plain text
	if err != nil {
		return err
	}
	return d.writeFile(loginFile, b)
}
