package mfa

import (
	"errors"
	"fmt"
	"time"
)

// ErrLocked is returned (wrapped, with the time the lock ends) by
// Lockout.Check while an account is locked.
var ErrLocked = errors.New("too many failed attempts")

// Lockout is the rule for repeated failures of a password or a code. After
// Max consecutive failures the account is locked for Window; while the
// count stays at or above Max every further failure locks it again, so
// after a lock lifts there is one attempt per Window until a success
// resets the count. Guessing a TOTP code this way succeeds with odds of
// about 3 in a million per Window.
type Lockout struct {
	// Max is the number of consecutive failures that locks. Zero means 5.
	Max int
	// Window is how long a lock lasts. Zero means 15 minutes.
	Window time.Duration
}

// MaxFailures is Max, or its default.
func (l Lockout) MaxFailures() int { return l.max() }

// LockFor is Window, or its default.
func (l Lockout) LockFor() time.Duration { return l.window() }

func (l Lockout) max() int {
	if l.Max <= 0 {
		return 5
	}
	return l.Max
}

func (l Lockout) window() time.Duration {
	if l.Window <= 0 {
		return 15 * time.Minute
	}
	return l.Window
}

// Check returns an error wrapping ErrLocked when now is before
// lockedUntil. Check before verifying anything, so that a locked account
// does not even test a guess.
func (l Lockout) Check(lockedUntil, now time.Time) error {
	if now.Before(lockedUntil) {
		return fmt.Errorf("%w; try again after %s", ErrLocked, lockedUntil.UTC().Format(time.TimeOnly+" MST"))
	}
	return nil
}

// Fail records one more failure on top of failures at time now, and
// returns the new failure count and the time a lock ends (zero when the
// account is not locked). Store both.
func (l Lockout) Fail(failures int, now time.Time) (int, time.Time) {
	failures++
	if failures >= l.max() {
		return failures, now.Add(l.window())
	}
	return failures, time.Time{}
}

// Succeed returns the failure count and lock end to store after a
// success: zero and the zero time.
func (Lockout) Succeed() (int, time.Time) {
	return 0, time.Time{}
}
