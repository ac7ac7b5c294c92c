package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// loginPoll is how often `moat up` looks for a new login file.
const loginPoll = time.Second

// sessions keeps a netmap stream open with the credential in the login
// file, starting over whenever the file changes (a new `moat login`, or
// `moat logout`). It returns when ctx ends.
func (d *daemon) sessions(ctx context.Context) {
	for ctx.Err() == nil {
		raw, _ := os.ReadFile(d.cfg.dir.path(loginFile))
		l, err := d.cfg.dir.loadLogin()
		if err != nil {
			d.needLogin(err.Error())
			d.waitLoginChange(ctx, raw)
			continue
		}
		d.setLogin(l)
		sctx, cancel := context.WithCancel(ctx)
		go func() { d.waitLoginChange(sctx, raw); cancel() }()
		err = d.session(sctx, l)
		if control.IsAuth(err) {
			d.needLogin(refusal(err))
			<-sctx.Done() // until the login file changes
		}
		cancel()
	}
}

// session follows the netmap stream for one credential.
func (d *daemon) session(ctx context.Context, l *login) error {
	c, err := control.New(control.Config{URL: l.Coordinator, Fingerprint: l.Fingerprint, Credential: l.Credential})
	if err != nil {
		d.setProblem(err.Error())
		<-ctx.Done()
		return err
	}
	return c.Watch(ctx, d.apply, func(err error) {
		if err != nil {
			d.setProblem(d.unreachable(l.Coordinator, err))
		}
	})
}

// unreachable says, for people, that the coordinator cannot be reached
// and what that means for this device.
func (d *daemon) unreachable(coordinator string, err error) string {
	d.mu.Lock()
	connected := d.mu.netmap != nil
	d.mu.Unlock()
	msg := fmt.Sprintf("cannot reach the coordinator at %s (%s); retrying", coordinator, plainError(err))
	if connected {
		return msg + ", the last netmap stays in use"
	}
	return msg + "; check the URL (`moat login --coordinator URL`) and your network, or ask whoever runs moat whether it is up"
}

// refusal says why the coordinator refused the credential, from its own
// answer (without its advice, which needLogin gives).
func refusal(err error) string {
	why := "signed out, revoked or expired"
	var e *control.Error
	if errors.As(err, &e) && e.Message != "" {
		why, _, _ = strings.Cut(e.Message, "; run `moat login`")
	}
	return "the coordinator refused this device's credential (" + why + ")"
}

// apply takes a new netmap into the engine and the router.
func (d *daemon) apply(nm *wire.NetMap) {
	if err := d.eng.Reconfig(nm); err != nil {
		d.setProblem("the coordinator sent a netmap this device cannot use: " + err.Error())
		return
	}
	d.rt.SetNetMap(nm)
	d.rt.SetLoginRequired("")
	d.mu.Lock()
	d.mu.netmap = nm
	d.mu.Unlock()
	d.setProblem("")
}

// needLogin makes the local endpoint answer "run `moat login`".
func (d *daemon) needLogin(why string) {
	d.rt.SetLoginRequired(why)
	d.setProblem(why + "; run `moat login`")
}

// setProblem records what is wrong ("" = nothing) and tells the person
// when it changes.
func (d *daemon) setProblem(p string) {
	d.mu.Lock()
	changed := p != d.mu.problem
	d.mu.problem = p
	d.mu.Unlock()
	switch {
	case !changed:
	case p == "":
		fmt.Fprintln(d.out, "moat: connected to the coordinator")
	default:
		fmt.Fprintln(d.out, "moat: "+p)
	}
}

func (d *daemon) setLogin(l *login) {
	d.mu.Lock()
	d.mu.login = l
	d.mu.Unlock()
}

// waitLoginChange returns when the login file's content differs from
// old, or when ctx ends.
func (d *daemon) waitLoginChange(ctx context.Context, old []byte) {
	t := time.NewTicker(loginPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := os.ReadFile(d.cfg.dir.path(loginFile))
		if errors.Is(err, os.ErrNotExist) {
			cur = nil
		}
		if !bytes.Equal(cur, old) {
			return
		}
	}
}
