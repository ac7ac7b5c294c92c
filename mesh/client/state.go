package client

import (
	"crypto/rand"
	"encoding/base64"
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
	"github.com/moatmesh/moat/mesh/member"
	"github.com/moatmesh/moat/mesh/wire"
)

// The files in a client's state directory. All are 0600 in a 0700
// directory.
const (
	KeyFile    = "device.key" // the WireGuard private key, base64; never leaves the device
	LoginFile  = "login.json" // the coordinator and this device's credential
	SocketFile = "moat.sock"  // a running client's control socket (status, down)
	TokenFile  = "api.token"  // the local API token callers pass as their API key
)

// tokenPrefix marks a local API token.
const tokenPrefix = "moat_lt_"

// Dir is a client's state directory: its key, its login and the control
// socket of the client running on it.
type Dir string

// Path is the path of the file name in d.
func (d Dir) Path(name string) string { return filepath.Join(string(d), name) }

// Ensure creates the directory (0700) and tightens its mode if needed.
func (d Dir) Ensure() error { return member.EnsureDir(string(d)) }

// writeFile replaces name atomically and durably with data, mode 0600.
func (d Dir) writeFile(name string, data []byte) error {
	if err := d.Ensure(); err != nil {
		return err
	}
	return member.WriteFile(d.Path(name), data)
}

// DeviceKey loads the device's private key; with create it makes and
// saves one when there is none yet.
func (d Dir) DeviceKey(create bool) (key.Private, error) {
	b, err := os.ReadFile(d.Path(KeyFile))
	switch {
	case err == nil:
		k, err := key.ParsePrivate(strings.TrimSpace(string(b)))
		if err != nil {
			return key.Private{}, fmt.Errorf("%s: %w", d.Path(KeyFile), err)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist) || !create:
		return key.Private{}, err
	}
	k, err := key.NewPrivate()
	if err != nil {
		return key.Private{}, err
	}
	if err := d.writeFile(KeyFile, []byte(k.Text()+"\n")); err != nil {
		return key.Private{}, fmt.Errorf("save the device key: %w", err)
	}
	return k, nil
}

// Token returns the local API token that programs pass to the local
// endpoint as their API key; with create it makes and saves one when
// there is none yet. It stays the same across sign-ins.
func (d Dir) Token(create bool) (string, error) {
	b, err := os.ReadFile(d.Path(TokenFile))
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if !strings.HasPrefix(tok, tokenPrefix) || len(tok) < len(tokenPrefix)+32 {
			return "", fmt.Errorf("%s is damaged; delete it and run `moat token` for a new one", d.Path(TokenFile))
		}
		return tok, nil
	case !errors.Is(err, fs.ErrNotExist) || !create:
		return "", err
	}
	var r [32]byte
	rand.Read(r[:])
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(r[:])
	if err := d.writeFile(TokenFile, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("save the local API token: %w", err)
	}
	return tok, nil
}

// Login is what a sign-in saves: the coordinator and the device's
// credential, with what the coordinator said about the device.
type Login struct {
	Coordinator string        `json:"coordinator"`
	Fingerprint string        `json:"fingerprint,omitempty"`
	Credential  wire.Secret   `json:"credential"`
	DeviceID    wire.DeviceID `json:"deviceId"`
	Addresses   []netip.Addr  `json:"addresses"`
	Expiry      time.Time     `json:"expiry"`
	Identity    wire.Identity `json:"identity"`
	SignedIn    time.Time     `json:"signedIn"`
}

// ErrNoLogin means the device is not signed in (`moat login` was not
// run, or `moat logout` was).
var ErrNoLogin = errors.New("this device is not signed in; run `moat login --coordinator URL`")

// LoadLogin reads the login, ErrNoLogin when there is none.
func (d Dir) LoadLogin() (*Login, error) {
	b, err := os.ReadFile(d.Path(LoginFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoLogin
	}
	if err != nil {
		return nil, err
	}
	var l Login
	if err := json.Unmarshal(b, &l); err != nil || l.Credential == "" {
		return nil, fmt.Errorf("%s is damaged; run `moat login` again", d.Path(LoginFile))
	}
	return &l, nil
}

// SaveLogin replaces the login; a running client picks it up.
func (d Dir) SaveLogin(l *Login) error {
	b, err := json.MarshalIndent(l, "", "  ") // a Secret encodes as its plain text
	if err != nil {
		return err
	}
	return d.writeFile(LoginFile, b)
}

// RemoveLogin forgets the login; a running client then asks for a new
// one.
func (d Dir) RemoveLogin() error { return os.Remove(d.Path(LoginFile)) }
