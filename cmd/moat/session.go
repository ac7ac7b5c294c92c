package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
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
			d.needLogin("the coordinator refused this device's credential (signed out, revoked or expired)")
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
			d.setProblem(fmt.Sprintf("cannot reach the coordinator at %s (%v); retrying, the last netmap stays in use", l.Coordinator, err))
		}
	})
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
