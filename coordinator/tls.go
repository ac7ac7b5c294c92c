package coordinator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

// tlsSecret names the self-signed certificate and key in the secrets
// table (PEM, certificate then key).
const tlsSecret = "tls-self-signed"

// SelfSignedTLS returns the coordinator's self-signed certificate and
// its SHA-256 fingerprint, which clients pin with
// --coordinator-fingerprint. It lives in the database, sealed, so every
// replica serves the same certificate; on first use it is imported from
// the files an earlier version kept in DataDir, or created (ECDSA P-256,
// ten years, for the host of PublicURL). Its public half is written to
// DataDir/tls-cert.pem for tools that pin the certificate.
func SelfSignedTLS(ctx context.Context, cfg Config) (tls.Certificate, string, error) {
	var pair []byte
	err := withSecrets(ctx, cfg, func(st *store.DB, box *seal.Box) (err error) {
		pair, err = selfSignedPair(ctx, st, box, cfg)
		return err
	})
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
	}
	cert, fp, err := parsePair(pair, pair)
	if err != nil {
		return cert, fp, err
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "tls-cert.pem"), pub, 0o644); err != nil {
		return cert, fp, fmt.Errorf("self-signed certificate: %w", err)
	}
	return cert, fp, nil
}

// selfSignedPair returns the stored certificate and key, PEM.
func selfSignedPair(ctx context.Context, st *store.DB, box *seal.Box, cfg Config) ([]byte, error) {
	return sharedSecret(ctx, st, box, tlsSecret, func() ([]byte, error) {
		certPath, keyPath := filepath.Join(cfg.DataDir, "tls-cert.pem"), filepath.Join(cfg.DataDir, "tls-key.pem")
		if !fileExists(certPath) {
			cert, key, err := newSelfSigned(cfg.PublicURL)
			return append(cert, key...), err
		}
		cert, err := os.ReadFile(certPath)
		if err != nil {
			return nil, err
		}
		key, err := os.ReadFile(keyPath)
		return append(cert, key...), err
	})
}

// SelfSignedCert loads the self-signed certificate kept as files in
// dataDir, creating them on first use, and returns it with its SHA-256
// fingerprint. A single process with no database uses it (tests);
// serve uses SelfSignedTLS.
func SelfSignedCert(dataDir, publicURL string) (tls.Certificate, string, error) {
	certPath, keyPath := filepath.Join(dataDir, "tls-cert.pem"), filepath.Join(dataDir, "tls-key.pem")
	if _, err := os.Stat(certPath); errors.Is(err, os.ErrNotExist) {
		if err := writeSelfSigned(certPath, keyPath, publicURL); err != nil {
			return tls.Certificate{}, "", err
		}
	}
	cert, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("load self-signed certificate: %w", err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("load self-signed certificate: %w", err)
	}
	return parsePair(cert, key)
}

func parsePair(certPEM, keyPEM []byte) (tls.Certificate, string, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("load self-signed certificate: %w", err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return cert, hex.EncodeToString(sum[:]), nil
}

func writeSelfSigned(certPath, keyPath, publicURL string) error {
	cert, key, err := newSelfSigned(publicURL)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, cert, 0o644)
}

// newSelfSigned makes a certificate for the host of publicURL and its
// key, both PEM.
func newSelfSigned(publicURL string) (certPEM, keyPEM []byte, err error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Hostname() == "" {
		return nil, nil, fmt.Errorf("a self-signed certificate needs the public URL's host, not %q", publicURL)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "moat coordinator " + u.Hostname()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{u.Hostname()}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
