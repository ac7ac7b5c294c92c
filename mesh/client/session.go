package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/member"
)

// sessions keeps a netmap stream open with the credential in the login
// file, starting over whenever the file changes (a new sign-in, or a
// sign-out). It returns when ctx ends.
func (c *Client) sessions(ctx context.Context) {
	for ctx.Err() == nil {
		raw, _ := os.ReadFile(c.dir.Path(LoginFile))
		l, err := c.dir.LoadLogin()
		if err != nil {
			c.needLogin(err.Error())
			c.waitLoginChange(ctx, raw)
			continue
		}
		c.setLogin(l)
		sctx, cancel := context.WithCancel(ctx)
		var watch sync.WaitGroup
		watch.Go(func() { c.waitLoginChange(sctx, raw); cancel() })
		if err := c.session(sctx, l); control.IsAuth(err) {
			c.needLogin(refusal(err))
		}
		<-sctx.Done() // until the login file changes
		watch.Wait()
	}
}

// session follows the netmap stream for one credential.
func (c *Client) session(ctx context.Context, l *Login) error {
	ctl, err := control.New(control.Config{URL: l.Coordinator, Fingerprint: l.Fingerprint, Credential: l.Credential})
	if err != nil {
		c.setProblem(err.Error())
		<-ctx.Done()
		return err
	}
	c.member.SetControl(ctl)
	return c.member.Run(ctx)
}

// onStatus turns the member's connection status into words for people.
func (c *Client) onStatus(err error) {
	switch {
	case err == nil:
		c.setProblem("")
	case errors.Is(err, member.ErrNetMapRefused):
		c.setProblem("the coordinator sent a netmap this device cannot use: " + err.Error())
	default:
		c.setProblem(c.unreachable(err))
	}
}

// unreachable says, for people, that the coordinator cannot be reached
// and what that means for this device.
func (c *Client) unreachable(err error) string {
	c.mu.Lock()
	coordinator := c.mu.login.Coordinator
	c.mu.Unlock()
	msg := fmt.Sprintf("cannot reach the coordinator at %s (%s); retrying", coordinator, plainError(err))
	if c.member.NetMap() != nil {
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

// needLogin makes the local endpoint answer "run `moat login`".
func (c *Client) needLogin(why string) {
	c.rt.SetLoginRequired(why)
	c.setProblem(why + "; run `moat login`")
}

// setProblem records what is wrong ("" = nothing) and tells the person
// when it changes.
func (c *Client) setProblem(p string) {
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	c.mu.Lock()
	changed := p != c.mu.problem
	c.mu.problem = p
	c.mu.Unlock()
	switch {
	case !changed:
	case p == "":
		c.cfg.Notify("connected to the coordinator")
	default:
		c.cfg.Notify(p)
	}
}

func (c *Client) setLogin(l *Login) {
	c.mu.Lock()
	c.mu.login = l
	c.mu.Unlock()
}

// waitLoginChange returns when the login file's content differs from
// old, or when ctx ends.
func (c *Client) waitLoginChange(ctx context.Context, old []byte) {
	t := time.NewTicker(c.cfg.LoginPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := os.ReadFile(c.dir.Path(LoginFile))
		if errors.Is(err, os.ErrNotExist) {
			cur = nil
		}
		if !bytes.Equal(cur, old) {
			return
		}
	}
}
