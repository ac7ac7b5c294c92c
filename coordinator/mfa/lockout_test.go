package mfa

import (
	"errors"
	"testing"
	"time"
)

func TestLockout(t *testing.T) {
	l := Lockout{Max: 3, Window: time.Minute}
	now := time.Unix(1_700_000_000, 0)
	var failures int
	var until time.Time
	for i := 1; i <= 2; i++ {
		failures, until = l.Fail(failures, now)
		if failures != i || !until.IsZero() {
			t.Fatalf("failure %d: %d, %v; want not locked", i, failures, until)
		}
		if err := l.Check(until, now); err != nil {
			t.Fatalf("failure %d: Check = %v", i, err)
		}
	}
	failures, until = l.Fail(failures, now)
	if failures != 3 || !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("third failure: %d, %v; want locked for a minute", failures, until)
	}
	edges := []struct {
		at     time.Time
		locked bool
	}{
		{now, true},
		{now.Add(time.Minute - time.Nanosecond), true},
		{now.Add(time.Minute), false},
		{now.Add(time.Hour), false},
	}
	for _, e := range edges {
		err := l.Check(until, e.at)
		if errors.Is(err, ErrLocked) != e.locked {
			t.Errorf("Check at +%v = %v; want locked=%v", e.at.Sub(now), err, e.locked)
		}
	}
	// After the lock lifts, one more failure locks again at once.
	later := now.Add(2 * time.Minute)
	failures, until = l.Fail(failures, later)
	if failures != 4 || !until.Equal(later.Add(time.Minute)) {
		t.Fatalf("failure after lock: %d, %v; want locked again", failures, until)
	}
	if f, u := l.Succeed(); f != 0 || !u.IsZero() {
		t.Fatalf("Succeed = %d, %v", f, u)
	}
}

func TestLockoutDefaults(t *testing.T) {
	var l Lockout
	now := time.Unix(1_700_000_000, 0)
	failures, until := 0, time.Time{}
	for range 4 {
		failures, until = l.Fail(failures, now)
	}
	if !until.IsZero() {
		t.Fatal("locked after 4 failures; default Max is 5")
	}
	_, until = l.Fail(failures, now)
	if !until.Equal(now.Add(15 * time.Minute)) {
		t.Fatalf("locked until %v; default Window is 15 minutes", until)
	}
}
