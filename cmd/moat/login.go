package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// loginConfig is what `moat login` was asked to do.
type loginConfig struct {
	dir         client.Dir
	coordinator string // "" = the one from the last login
	fingerprint string
	openBrowser bool
}

// doLogin signs this device in: key, login start, browser, wait, save.
func doLogin(ctx context.Context, cfg loginConfig, stdout, stderr io.Writer) error {
	if err := cfg.dir.Ensure(); err != nil {
		return err
	}
	priv, err := cfg.dir.DeviceKey(true)
	if err != nil {
		return err
	}
	if cfg.coordinator == "" {
		prev, err := cfg.dir.LoadLogin()
		if err != nil {
			return fmt.Errorf("which coordinator? pass --coordinator URL")
		}
		cfg.coordinator, cfg.fingerprint = prev.Coordinator, prev.Fingerprint
	}
	c, err := control.New(control.Config{URL: cfg.coordinator, Fingerprint: cfg.fingerprint})
	if err != nil {
		return err
	}
	start, err := c.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: hostname(), OS: runtime.GOOS})
	if err != nil {
		return err
	}
	showURL(stdout, start)
	if cfg.openBrowser {
		openBrowser(start.AuthURL) // best effort: the URL is printed anyway
	}
	res, err := waitLogin(ctx, c, start, stderr)
	if err != nil {
		return err
	}
	l := newLogin(cfg, res)
	if l.Identity.Login == "" {
		l.Identity = firstIdentity(ctx, c.WithCredential(res.Credential))
	}
	if err := cfg.dir.SaveLogin(l); err != nil {
		return fmt.Errorf("save the credential: %w", err)
	}
	if _, err := cfg.dir.Token(true); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Signed in as %s on %s (%s). This device's key is valid until %s.\nRun `moat up` to connect (a running `moat up` picks this up by itself).\nPrograms pass the output of `moat token` to the local endpoint as their API key.\n",
		who(l.Identity), l.Identity.DeviceName, joinAddrs(l.Addresses), l.Expiry.Local().Format(time.DateTime))
	return nil
}

// showURL prints the sign-in link, its QR code and the code the page
// will show, for the person to compare.
func showURL(w io.Writer, start *wire.LoginStart) {
	fmt.Fprintf(w, "To sign this device in, open:\n\n    %s\n\n", start.AuthURL)
	if q, err := qrcode.New(start.AuthURL, qrcode.Medium); err == nil {
		fmt.Fprintf(w, "or scan this with your phone:\n\n%s\n", q.ToSmallString(false))
	}
	if start.Code != "" {
		fmt.Fprintf(w, "The page shows the code %s; continue there only if it is exactly this one.\nNever open a sign-in link someone else sent you.\n\n", start.Code)
	}
}

// waitLogin polls until the person is done, until the login expires, or
// until ctx ends, with a spinner on w.
func waitLogin(ctx context.Context, c *control.Client, start *wire.LoginStart, w io.Writer) (*wire.LoginResult, error) {
	if !start.ExpiresAt.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, start.ExpiresAt)
		defer cancel()
	}
	done := make(chan struct{})
	spun := make(chan struct{})
	go func() { spin(w, "waiting for you to finish signing in…", done); close(spun) }()
	res, err := c.WaitLogin(ctx, start.Poll)
	close(done)
	<-spun
	var ce *control.Error
	switch {
	case err != nil && ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("the sign-in link expired; run `moat login` again")
	case errors.As(err, &ce) && ce.Code == wire.CodeLoginRefused:
		return nil, errors.New(ce.Message)
	}
	return res, err
}

func newLogin(cfg loginConfig, res *wire.LoginResult) *client.Login {
	l := &client.Login{
		Coordinator: cfg.coordinator, Fingerprint: cfg.fingerprint,
		Credential: res.Credential, DeviceID: res.DeviceID, Addresses: res.Addresses,
		Expiry: res.Expiry, SignedIn: time.Now(),
	}
	if res.NetMap != nil {
		l.Identity = res.NetMap.Self.Identity
	}
	return l
}

// errGotOne ends a netmap stream after its first netmap.
var errGotOne = errors.New("got a netmap")

// firstIdentity reads who the coordinator says this device belongs to
// from the first netmap, best effort.
func firstIdentity(ctx context.Context, c *control.Client) wire.Identity {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var id wire.Identity
	c.Stream(ctx, 0, func(nm *wire.NetMap) error {
		id = nm.Self.Identity
		return errGotOne
	})
	return id
}

func who(id wire.Identity) string {
	if id.Login != "" {
		return id.Login
	}
	return "(unknown person)"
}

// hostname is this machine's name as the coordinator accepts it: the first
// label, lowercase letters, digits and dashes, at most 63 characters.
func hostname() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(strings.ToLower(h), ".")
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, h)
	h = strings.Trim(h[:min(len(h), 63)], "-")
	if h == "" {
		return "device"
	}
	return h
}
