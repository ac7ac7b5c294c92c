package coordinator

import (
	"context"
	"errors"
	"time"
)

// Checking a policy costs CPU in proportion to its size and tests (both
// bounded by the policy package), and auditors may ask for checks too:
// at most maxPolicyChecks run at once in this process; a check that
// cannot start within policyCheckWait is refused with errPolicyBusy.
const (
	maxPolicyChecks = 2
	policyCheckWait = 2 * time.Second
)

var policyChecks = make(chan struct{}, maxPolicyChecks)

// errPolicyBusy refuses a policy check while others take every slot.
var errPolicyBusy = errors.New("the coordinator is busy checking other policies; try again in a minute")

// checkingPolicy runs f in one of the policy-check slots, or returns
// errPolicyBusy (or ctx's error) when none frees up in time.
func checkingPolicy(ctx context.Context, f func()) error {
	t := time.NewTimer(policyCheckWait)
	defer t.Stop()
	select {
	case policyChecks <- struct{}{}:
	case <-t.C:
		return errPolicyBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-policyChecks }()
	f()
	return nil
}
