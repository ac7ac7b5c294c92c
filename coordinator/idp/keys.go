package idp

import (
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

	jose "github.com/go-jose/go-jose/v4"
)

// signingKeyFile is the name of the signing key in Config.DataDir.
const signingKeyFile = "idp-signing-key.pem"

// signingKey is the provider's RS256 key; it serves as both op.SigningKey
// and op.Key (its public half, in the JWKS).
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

// loadOrCreateSigningKey reads the PKCS#8 PEM key in dir or creates it
// atomically (mode 0600). A key file readable by others is refused.
func loadOrCreateSigningKey(dir string) (*signingKey, error) {
	path := filepath.Join(dir, signingKeyFile)
	k, err := loadSigningKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := createSigningKey(path); err != nil {
		return nil, err
	}
	return loadSigningKey(path)
}

func loadSigningKey(path string) (*signingKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
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
	return &signingKey{id: keyID(&priv.PublicKey), priv: priv}, nil
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

func createSigningKey(path string) error {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".idpkey-*")
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	// Link, unlike rename, never replaces a key another process made first.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create signing key: %w", err)
	}
	return nil
}
