package meshbench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
)

// relayServerName is the name in the namespace relay's certificate.
const relayServerName = "moat-bench-relay"

// relayConfig is the namespace relay: where it listens, its certificate
// (made for this run) and, for the relay child alone, the members it
// admits.
type relayConfig struct {
	Addr    netip.AddrPort `json:"addr"`
	CertPEM string         `json:"cert"`
	KeyPEM  string         `json:"key,omitempty"`
	Admit   []key.Public   `json:"admit,omitempty"`
}

// URL is the relay's URL for its clients.
func (c *relayConfig) URL() string { return "https://" + c.Addr.String() + relay.Path }

// newRelayConfig makes a self-signed certificate for a relay on addr.
func newRelayConfig(addr netip.AddrPort) (*relayConfig, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: relayServerName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{relayServerName}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return &relayConfig{
		Addr:    addr,
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
	}, nil
}

// runRelayChild serves the relay that cfg describes until stdin closes.
func runRelayChild(js string) error {
	var cfg relayConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return err
	}
	stopProfile, err := profileChild("relay")
	if err != nil {
		return err
	}
	defer stopProfile()
	cert, err := tls.X509KeyPair([]byte(cfg.CertPEM), []byte(cfg.KeyPEM))
	if err != nil {
		return fmt.Errorf("relay certificate: %w", err)
	}
	s, err := relay.NewServer(relay.ServerConfig{Admit: func(_ context.Context, k key.Public) bool {
		return slices.ContainsFunc(cfg.Admit, k.Equal)
	}})
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Addr.String())
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(relay.Path, s)
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	fmt.Println("ready")
	// Each line on stdin asks for the relay's drops so far (relayDrops).
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(relay.DropTotal())
	}
	return nil
}
