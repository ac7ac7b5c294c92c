package idp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

// Signing keys live in the coordinator's database, sealed, so that every
// replica signs with the same key and serves the same key set. Each is a
// secret named signingKeyPrefix + its key id; the newest one in use signs,
// and the ones a rotation retired stay in the key set until the tokens
// they signed have expired.
const signingKeyPrefix = "idp-signing-key:"

// legacyKeyFile is where earlier versions kept the one signing key, in
// Config.DataDir; it is imported on first start so that nothing changes
// for the tokens it signed.
const legacyKeyFile = "idp-signing-key.pem"

// RetiredKeyKept is how long a rotated-out signing key stays in the key
// set: the longest an ID token it signed is valid, and a minute for
// clocks that differ.
const RetiredKeyKept = idTokenLifetime + time.Minute

// KeyStore keeps the signing keys; store.DB satisfies it.
type KeyStore interface {
	Secrets(ctx context.Context, prefix string) ([]*store.Secret, error)
	AddSecret(ctx context.Context, sec *store.Secret) (*store.Secret, error)
	RetireSecrets(ctx context.Context, prefix, keep string, retire time.Time) error
	PruneSecrets(ctx context.Context, prefix string, now time.Time) (int64, error)
}

// signingKey is an RS256 key; it serves as both op.SigningKey and op.Key
// (its public half, in the JWKS).
type signingKey struct {
	id   string
	priv *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Algorithm() jose.SignatureAlgorithm          { return jose.RS256 }
func (k *signingKey) ID() string                                  { return k.id }
func (k *signingKey) Use() string                                 { return "sig" }

// Key is the private key when signing and the public key in the JWKS; op
// calls it through two interfaces, so the public view is a separate type.
func (k *signingKey) Key() any { return k.priv }

type publicKey struct{ *signingKey }

func (k publicKey) Key() any { return &k.priv.PublicKey }

// EnsureSigningKey makes sure ks holds a signing key in use: the one an
// earlier version kept in dataDir (if any), or a new one. It prunes keys
// whose retirement has passed.
func EnsureSigningKey(ctx context.Context, ks KeyStore, box *seal.Box, dataDir string, now time.Time) error {
	if _, err := ks.PruneSecrets(ctx, signingKeyPrefix, now); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	secs, err := ks.Secrets(ctx, signingKeyPrefix)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	for _, s := range secs {
		if s.Retire.IsZero() {
			return nil
		}
	}
	priv, err := legacySigningKey(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	_, err = addSigningKey(ctx, ks, box, priv, now)
	return err
}

// RotateSigningKey makes a new signing key, which signs from now on on
// every replica; the keys it replaces stay in the key set for
// RetiredKeyKept, and keys retired before now are pruned. It returns the
// new key's id.
func RotateSigningKey(ctx context.Context, ks KeyStore, box *seal.Box, now time.Time) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	name, err := addSigningKey(ctx, ks, box, priv, now)
	if err != nil {
		return "", err
	}
	if err := ks.RetireSecrets(ctx, signingKeyPrefix, name, now.Add(RetiredKeyKept)); err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	if _, err := ks.PruneSecrets(ctx, signingKeyPrefix, now); err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	return name[len(signingKeyPrefix):], nil
}

func addSigningKey(ctx context.Context, ks KeyStore, box *seal.Box, priv *rsa.PrivateKey, now time.Time) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	name := signingKeyPrefix + keyID(&priv.PublicKey)
	sec := &store.Secret{Name: name, Value: box.Seal(der, secretAD(name)), Created: now}
	if _, err := ks.AddSecret(ctx, sec); err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	return name, nil
}

// secretAD is the additional data a coordinator secret is sealed with.
func secretAD(name string) []byte { return []byte("setting:" + name) }

// keyring reads the signing keys from the store on every use, so that a
// rotation on one replica reaches all; each key is unsealed and parsed
// once.
type keyring struct {
	ks  KeyStore
	box *seal.Box
	now func() time.Time

	mu     sync.Mutex
	parsed map[string]*signingKey // by secret name
}

// keys returns the key that signs (the newest in use) and every key
// whose tokens may still be valid.
func (r *keyring) keys(ctx context.Context) (signing *signingKey, valid []*signingKey, err error) {
	secs, err := r.ks.Secrets(ctx, signingKeyPrefix) // oldest first
	if err != nil {
		return nil, nil, fmt.Errorf("signing keys: %w", err)
	}
	now := r.now()
	for _, s := range secs {
		if !s.Retire.IsZero() && !s.Retire.After(now) {
			continue
		}
		k, err := r.parse(s)
		if err != nil {
			return nil, nil, err
		}
		valid = append(valid, k)
		if s.Retire.IsZero() {
			signing = k
		}
	}
	if signing == nil {
		return nil, nil, errors.New("signing keys: none in use; run moat-coordinator init")
	}
	return signing, valid, nil
}

func (r *keyring) parse(s *store.Secret) (*signingKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.parsed[s.Name]; k != nil {
		return k, nil
	}
	der, err := r.box.Open(s.Value, secretAD(s.Name))
	if err != nil {
		return nil, fmt.Errorf("unseal %s: %w", s.Name, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	priv, ok := parsed.(*rsa.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("signing key %s: not a PKCS#8 RSA key", s.Name)
	}
	if r.parsed == nil {
		r.parsed = map[string]*signingKey{}
	}
	k := &signingKey{id: keyID(&priv.PublicKey), priv: priv}
	r.parsed[s.Name] = k
	return k, nil
}

// legacySigningKey reads the PKCS#8 PEM key an earlier version kept in
// dir. A key file readable by others is refused.
func legacySigningKey(dir string) (*rsa.PrivateKey, error) {
	path := filepath.Join(dir, legacyKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load signing key: %s has mode %#o; it must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("load signing key: %s holds no PEM PRIVATE KEY", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %s: %w", path, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load signing key: %s is not an RSA key", path)
	}
	return priv, nil
}

// keyID is the RFC 7638 thumbprint of the public key, so the id is stable
// for as long as the key is.
func keyID(pub *rsa.PublicKey) string {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil { // unreachable for an RSA key
		sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(pub))
		tp = sum[:]
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}
