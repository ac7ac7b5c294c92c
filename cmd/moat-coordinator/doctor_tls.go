package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/relay"
)

// certWarnBefore is how long before its expiry a certificate is worth a
// warning.
const certWarnBefore = 14 * 24 * time.Hour

// localCert is the certificate serve would load: --tls-cert, or the
// self-signed one in the data dir; nil when serve runs plain HTTP.
func (d *doctor) localCert() (*x509.Certificate, string, error) {
	path := d.s.tlsCert
	if d.s.tlsMode == "self-signed" {
		path = filepath.Join(d.s.store.dataDir, "tls-cert.pem")
	}
	if path == "" {
		return nil, "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, path, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, path, errors.New("no PEM certificate in it")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	return c, path, err
}

// tls checks the certificate serve would present: valid now, not about
// to expire, and for the public URL's host.
func (d *doctor) tls(now time.Time) check {
	u, _ := url.Parse(d.cfg.PublicURL)
	cert, path, err := d.localCert()
	switch {
	case err != nil && d.s.tlsMode == "self-signed" && errors.Is(err, os.ErrNotExist):
		return warnf("tls", "no self-signed certificate at %s yet: serve --tls self-signed makes one on its first start", path)
	case err != nil:
		return failf("tls", "certificate %s: %v", path, err)
	case cert == nil && u.Scheme == "https":
		return passf("tls", "terminated in front of the coordinator (a proxy); its certificate is checked through the public URL")
	case cert == nil && isLoopback(u.Hostname()):
		return passf("tls", "off: plain HTTP on this host only")
	case cert == nil:
		return warnf("tls", "off, and the public URL is http://: sign-ins and device credentials cross the network in clear; use https with --tls-cert or a TLS proxy")
	}
	if msg, status := expiry(cert, now); status != statusOK {
		return check{"tls", status, fmt.Sprintf("%s %s", path, msg)}
	}
	if err := cert.VerifyHostname(u.Hostname()); err != nil {
		return failf("tls", "%s is not for %s (the public URL's host): %v; get one that names it", path, u.Hostname(), err)
	}
	return passf("tls", "%s is for %s and valid until %s", path, u.Hostname(), cert.NotAfter.UTC().Format(time.DateOnly))
}

// expiry judges a certificate's validity period at now.
func expiry(c *x509.Certificate, now time.Time) (string, string) {
	switch {
	case now.After(c.NotAfter):
		return fmt.Sprintf("expired on %s: renew it", c.NotAfter.UTC().Format(time.DateOnly)), statusFail
	case now.Before(c.NotBefore):
		return fmt.Sprintf("is not valid before %s: check this host's clock", c.NotBefore.UTC().Format(time.DateTime)), statusFail
	case c.NotAfter.Sub(now) < certWarnBefore:
		return fmt.Sprintf("expires on %s: renew it soon", c.NotAfter.UTC().Format(time.DateOnly)), statusWarn
	}
	return "valid until " + c.NotAfter.UTC().Format(time.DateOnly), statusOK
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// publicURL checks that the coordinator answers at its public URL, as
// devices and browsers reach it: /healthz (the process) and /readyz (its
// database), and the certificate presented there.
func (d *doctor) publicURL(ctx context.Context) check {
	base := strings.TrimSuffix(d.cfg.PublicURL, "/")
	client, err := d.publicClient()
	if err != nil {
		return failf("public-url", "%v", err)
	}
	resp, body, err := get(ctx, client, base+"/healthz")
	if err != nil {
		return failf("public-url", "cannot reach %s/healthz: %v; check that serve runs, and the DNS name, proxy and firewall in front of it", base, err)
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		return failf("public-url", "%s/healthz answered %s: the public URL does not lead to this coordinator; check the proxy in front of it", base, resp.Status)
	}
	served := ""
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		msg, status := expiry(resp.TLS.PeerCertificates[0], time.Now())
		if status != statusOK {
			return check{"public-url", status, "the certificate served at " + base + " " + msg}
		}
		served = "; its certificate is " + msg
	}
	if resp, _, err := get(ctx, client, base+"/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		return failf("public-url", "%s answers but /readyz does not say ready (%v): the coordinator cannot reach its database", base, statusOf(resp, err))
	}
	return passf("public-url", "%s answers /healthz and /readyz%s", base, served)
}

// relay checks that the relay over HTTPS answers through the public URL:
// a plain GET of relay.Path gets DERP's 426 (it wants its Upgrade). A
// proxy that does not pass the path leaves members on networks that block
// UDP without a way to their nodes.
func (d *doctor) relay(ctx context.Context) check {
	base := strings.TrimSuffix(d.cfg.PublicURL, "/")
	client, err := d.publicClient()
	if err != nil {
		return failf("relay", "%v", err)
	}
	resp, _, err := get(ctx, client, base+relay.Path)
	switch {
	case err != nil:
		return warnf("relay", "cannot reach %s%s: %v; devices on networks that block UDP cannot reach nodes", base, relay.Path, err)
	case resp.StatusCode != http.StatusUpgradeRequired:
		return warnf("relay", "%s%s answered %s, not the relay: let the proxy in front pass %s with its Upgrade header, or devices on networks that block UDP cannot reach nodes",
			base, relay.Path, resp.Status, relay.Path)
	}
	return passf("relay", "the relay answers at %s%s", base, relay.Path)
}

// publicClient trusts the system roots, plus the self-signed certificate
// when serve makes one.
func (d *doctor) publicClient() (*http.Client, error) {
	if d.s.tlsMode != "self-signed" {
		return d.client, nil
	}
	cert, path, err := d.localCert()
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate %s: %v", path, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &http.Client{Timeout: checkTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

func get(ctx context.Context, client *http.Client, u string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp, string(b), nil
}

func statusOf(resp *http.Response, err error) any {
	if err != nil {
		return err
	}
	return resp.Status
}
