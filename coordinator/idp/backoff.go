package idp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Failed passwords and codes slow further attempts down instead of
// locking the account: a lock is a way for anyone who knows a colleague's
// email to keep them out. Failures are counted in the store (so the count
// holds across replicas) under two keys:
//
//   - the account from one client address: the first addrFree failures
//     are free, then each waits twice as long as the one before, up to
//     addrMaxWait. One guesser is slowed at once, and a colleague at
//     another address is not slowed by them at all.
//   - the account from anywhere: accountFree failures, then doubling up to
//     accountMaxWait. Guessing from many addresses is slowed too, and the
//     short cap keeps the account usable while it is attacked.
//
// The keys use the email as typed (normalised), whether or not an account
// has it, so that an unknown account is answered exactly as a known one.
// A complete sign-in clears the counts of both steps.
const (
	addrFree       = 5
	addrMaxWait    = 15 * time.Minute
	accountFree    = 20
	accountMaxWait = time.Minute
)

// backoffKey is one count of failures and its rule.
type backoffKey struct {
	key     string
	free    int
	maxWait time.Duration
}

// wait is how long the attempt after the failures-th must wait.
func (k backoffKey) wait(failures int) time.Duration {
	if failures <= k.free {
		return 0
	}
	shift := min(failures-k.free-1, 20)
	return min(time.Second<<shift, k.maxWait)
}

// The two steps of a sign-in are counted apart, so that a right
// password (which is counted too: counts are taken before the check)
// never makes the code step wait; the code step's counts are not cleared
// by a right password, so knowing it buys no more code guesses.
const (
	stepPassword = "pw"
	stepCode     = "code"
)

// backoffKeys are the counts a sign-in step of email from r falls under.
func (p *Provider) backoffKeys(r *http.Request, step, email string) []backoffKey {
	return []backoffKey{
		{key: "idp|" + step + "|" + email + "|" + p.clientKey(r), free: addrFree, maxWait: addrMaxWait},
		{key: "idp|" + step + "|" + email, free: accountFree, maxWait: accountMaxWait},
	}
}

// clientKey names r's client for the per-address count.
func (p *Provider) clientKey(r *http.Request) string {
	if p.cfg.ClientKey != nil {
		return p.cfg.ClientKey(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// attempt counts the attempt about to be checked as a failure under
// every key (a complete sign-in clears them), or returns the error to
// show when a count asks it to wait: the same for every account. wait is
// how long the next attempt must wait should this one fail.
func (p *Provider) attempt(ctx context.Context, keys []backoffKey) (wait time.Duration, err error) {
	now := p.now()
	for _, k := range keys {
		ok, next, err := p.users.SignInAttempt(ctx, k.key, now, k.wait)
		if err != nil {
			p.log.Error("idp: count sign-in attempt", "err", err)
			return 0, errInternal
		}
		if !ok {
			return 0, slowDown(next.Sub(now))
		}
		wait = max(wait, next.Sub(now))
	}
	return wait, nil
}

// failed logs a failed attempt (counted by attempt already) and returns
// shown, or the wait it started when the next attempt must wait.
func (p *Provider) failed(wait time.Duration, reason string, shown error) error {
	p.log.Info("idp: sign-in refused", "reason", reason)
	if wait > 0 {
		return slowDown(wait)
	}
	return shown
}

// succeeded clears the counts under keys after a complete sign-in.
func (p *Provider) succeeded(ctx context.Context, keys []backoffKey) {
	for _, k := range keys {
		if err := p.users.ClearSignInFailures(ctx, k.key); err != nil {
			p.log.Error("idp: clear sign-in backoff", "err", err)
		}
	}
}

// slowDown is the answer while attempts must wait d.
func slowDown(d time.Duration) error {
	return &userError{http.StatusTooManyRequests,
		fmt.Sprintf("Too many failed attempts. Wait %s and try again, or ask an admin for a new setup link.", d.Round(time.Second))}
}
