package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The IdP's health is reported apart from readiness: /readyz answers from
// the database alone, so that an IdP outage (which stops new sign-ins
// but nothing else: devices keep their keys, nodes keep serving) does not
// take every replica out of the load balancer at once. The coordinator
// fetches the external IdP's discovery document every IdPCheckInterval
// and shows the result as moat_coordinator_idp_up, on the admin
// overview, in the log when it changes, and in `doctor`.

// DefaultIdPCheckInterval is Config.IdPCheckInterval's default.
const DefaultIdPCheckInterval = 30 * time.Second

// idpCheckTimeout bounds one check: an IdP slower than this to serve its
// discovery document counts as down.
const idpCheckTimeout = 10 * time.Second

// idpHealth is the last known state of the IdP; close stops its watcher.
type idpHealth struct {
	mu struct {
		sync.Mutex
		problem string    // empty while the IdP answers
		since   time.Time // when problem began
	}
	stop context.CancelFunc
	done chan struct{}
}

// newIdPHealth starts watch on a goroutine of its own (nil: the embedded
// provider, always up).
func newIdPHealth(watch func(ctx context.Context, h *idpHealth)) *idpHealth {
	h := &idpHealth{done: make(chan struct{})}
	ctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	if watch == nil {
		close(h.done)
		return h
	}
	go func() {
		defer close(h.done)
		watch(ctx, h)
	}()
	return h
}

func (h *idpHealth) close() {
	h.stop()
	<-h.done
}

// set records the outcome of a check and reports whether it changed.
func (h *idpHealth) set(problem string, now time.Time) (changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if (problem == "") == (h.mu.problem == "") {
		h.mu.problem = problem
		return false
	}
	h.mu.problem, h.mu.since = problem, now
	return true
}

// Problem is why the IdP is not answering and since when; empty while
// it answers.
func (h *idpHealth) Problem() (problem string, since time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.problem, h.mu.since
}

// collector is moat_coordinator_idp_up.
func (h *idpHealth) collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "moat_coordinator_idp_up",
		Help: "1 when the identity provider's discovery document answered at the last check, 0 when it did not.",
	}, func() float64 {
		if p, _ := h.Problem(); p != "" {
			return 0
		}
		return 1
	})
}

// watchExternal checks the external IdP's discovery document every
// IdPCheckInterval until ctx ends, logging each change.
func (a *authenticator) watchExternal(ctx context.Context, h *idpHealth) {
	t := time.NewTicker(a.s.cfg.IdPCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, idpCheckTimeout)
		_, _, err := discover(cctx, a.client, a.issuer)
		cancel()
		if ctx.Err() != nil {
			return
		}
		problem := ""
		if err != nil {
			problem = err.Error()
		}
		if h.set(problem, a.s.cfg.Now()) {
			if problem != "" {
				a.s.log.Warn("the identity provider stopped answering: new sign-ins fail until it is back; devices and nodes keep working", "issuer", a.issuer, "err", problem)
			} else {
				a.s.log.Info("the identity provider answers again", "issuer", a.issuer)
			}
		}
	}
}
