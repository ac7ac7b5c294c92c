package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/netmap"
	"github.com/moatmesh/moat/coordinator/passkey"
	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/policy"
)

// Server is a coordinator: an http.Handler plus the goroutine that keeps
// every device's netmap current. Close stops it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   *store.DB
	box     *seal.Box
	netmaps *netmap.Fanout
	auth    *authenticator
	// passkeys is the WebAuthn relying party of the public URL; nil when
	// that URL names an IP address (stepup_passkey.go).
	passkeys *passkey.RP
	mx       *metrics
	relay    *relay.Server // at relay.Path, beside the routes (relay.go)
	probe    struct {      // the relay process's last store check (relayProbeReady)
		mu sync.Mutex
		at time.Time
		ok bool
	}

	refusals refusalLimiter // refused admin credentials into the trail (trail.go)
	sinks    auditSinks     // pushing the audit out (auditsinks.go)
	tailnets tailnetHub     // waking the tailnet streams (tailnet.go)
	retain   *leaderJob     // deleting expired audit records (retention.go)
	rechecks *leaderJob     // re-checking people at the IdP (idprecheck.go); nil when off

	handler  http.Handler
	drain    drainer      // ends streams at shutdown (shutdown.go)
	inFlight atomic.Int64 // requests being answered (accesslog.go)
	stop     context.CancelFunc
	wg       sync.WaitGroup // the sweeper

	mu struct {
		sync.Mutex
		policy   *policy.Policy // the policy in force, compiled
		policyID int64
	}
}

// builtinPolicy is in force until an admin saves one: it grants nothing.
const builtinPolicy = "// moat's built-in policy: deny everything until an admin saves one.\n{}\n"

// New opens the store (running migrations), loads the policy in force and
// computes the first netmaps. Call Close when done.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if info, err := st.Schema(ctx); err == nil && info.Version > store.SchemaLevel() {
		cfg.Logger.Warn("the database schema is newer than this binary, which still may use it: upgrade this replica next",
			"schema_version", info.Version, "min_level", info.MinLevel, "binary_schema_level", store.SchemaLevel())
	}
	s, err := newServer(ctx, cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

func newServer(ctx context.Context, cfg Config, st *store.DB) (*Server, error) {
	box, err := openBox(ctx, cfg, st)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, box: box}
	if !cfg.RelayOnly {
		s.passkeys = s.newPasskeys() // nil: a relay process signs nobody in
	}
	if err := s.loadPolicy(ctx); err != nil {
		return nil, err
	}
	if !cfg.RelayOnly {
		if s.auth, err = newAuthenticator(ctx, s); err != nil {
			return nil, err
		}
	}
	if s.relay, err = s.newRelay(ctx); err != nil {
		s.closeAuth()
		return nil, err
	}
	bus, err := st.Bus(ctx) // how replicas tell each other of changes
	if err == nil {
		s.netmaps, err = netmap.New(ctx, netmap.Config{Store: st, Policies: s, Now: cfg.Now, Logger: cfg.Logger, Bus: bus,
			Updated: s.netmapsUpdated, Relays: s.netmapRelays()})
	}
	if err != nil {
		s.relay.Close()
		s.closeAuth()
		return nil, err
	}
	s.mx = newMetrics(slices.Concat(s.netmaps.Collectors(), s.opsCollectors(), cfg.Collectors)...)
	sweepCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if cfg.RelayOnly {
		s.handler = s.relayOnlyRoutes()
		s.startRelayMesh(sweepCtx)
		return s, nil
	}
	s.mx.reg.MustRegister(s.auth.health.collector(), s.budgetCollector())
	s.handler = s.routes()
	if err := s.ensurePromptKeys(ctx); err != nil {
		s.log.Error("make people's prompt keys", "err", err)
	}
	s.sinks = s.startSinks()
	s.retain = s.startRetention()
	s.rechecks = s.startRecheck()
	s.wg.Add(1)
	go s.sweeper(sweepCtx)
	s.startRelayMesh(sweepCtx)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isRelayPath(r.URL.Path) {
		if s.cfg.RelayOnly && r.URL.Path == relay.Path+"/probe" && !s.relayProbeReady(r.Context()) {
			// DERP answers its probe whatever its state; a relay process
			// whose store is down refuses every member, so it must not
			// look healthy to members choosing a relay.
			http.Error(w, "store not reachable", http.StatusServiceUnavailable)
			return
		}
		s.relay.ServeHTTP(w, r)
		return
	}
	s.handler.ServeHTTP(w, r)
}

// Store returns the coordinator's store (for the CLI's user commands).
func (s *Server) Store() *store.DB { return s.store }

// Close stops the netmap fan-out and the sweeper and closes the store.
// Open streams end.
func (s *Server) Close() error {
	s.stop()
	s.wg.Wait()
	s.relay.Close()
	s.sinks.close()
	s.retain.close()
	s.rechecks.close()
	s.netmaps.Close()
	s.closeAuth()
	return s.store.Close()
}

// closeAuth closes the authenticator; a relay process has none.
func (s *Server) closeAuth() {
	if s.auth != nil {
		s.auth.close()
	}
}

// relayProbeReady reports whether a relay process can admit members:
// whether its store answers, as /readyz asks. The probe is open to
// anyone and every member asks it, so the store is asked at most once a
// relayProbeEvery, whoever asks; the others get that answer.
func (s *Server) relayProbeReady(ctx context.Context) bool {
	p := &s.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < relayProbeEvery {
		return p.ok
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	err := s.store.Ping(ctx)
	if err != nil {
		s.log.Debug("relay probe: not ready", "err", err)
	}
	p.at, p.ok = time.Now(), err == nil
	return p.ok
}

// relayProbeEvery is how long a relay process's probe answer stands.
const relayProbeEvery = time.Second

// relayOnlyRoutes are a relay process's paths beside the relay
// (Config.RelayOnly): /healthz and /readyz; the relay's probe answers
// 503 while the store does not (relayProbeReady). Everything else is 404,
// /metrics included: a relay process has no API tokens to check it
// with, so moat-coordinator serves it on --metrics-listen only.
func (s *Server) relayOnlyRoutes() http.Handler {
	quietGin()
	r := gin.New()
	r.Use(s.accessLog, gin.Recovery(), securityHeaders, s.inFlightPerClient())
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	r.GET("/readyz", s.ready)
	return r
}

// loadPolicy parses the newest saved policy, or the built-in deny-all,
// unless it is the one already in force.
func (s *Server) loadPolicy(ctx context.Context) error {
	text, id := builtinPolicy, int64(0)
	pv, err := s.store.Policy(ctx)
	switch {
	case err == nil:
		text, id = pv.Text, pv.ID
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("load policy: %w", err)
	}
	s.mu.Lock()
	current := s.mu.policy != nil && s.mu.policyID == id
	s.mu.Unlock()
	if current {
		return nil // already compiled: parse only what changed
	}
	p, err := policy.Parse("policy.hujson", []byte(text))
	if err != nil {
		// A stored policy was valid when saved; if this build reads it
		// differently, fail closed rather than guess.
		return fmt.Errorf("stored policy %d no longer parses: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.policy == nil || id >= s.mu.policyID { // a slower load of an older one must not win
		s.mu.policy, s.mu.policyID = p, id
	}
	return nil
}

// PolicyInForce returns the policy in force, first picking up one
// another replica may have saved (one small query); it implements
// netmap.Policies.
func (s *Server) PolicyInForce(ctx context.Context) *policy.Policy {
	if err := s.loadPolicy(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("reload policy", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.policy
}

// ClockJumped recomputes this replica's netmaps soon, so a device whose
// key expired while Config.Now jumped leaves the mesh now rather than at
// the next safety-net recompute (up to 30 s later). The coordinator's own
// expiry timer runs on the monotonic clock, so only a clock that moves
// without time passing needs this: the test clock calls it on Advance.
func (s *Server) ClockJumped() { s.netmaps.Recheck() }

// changed asks for the netmaps to be recomputed soon.
func (s *Server) changed() { s.netmaps.Changed() }

// sweeper runs sweep every sweepEvery, the first time at once.
func (s *Server) sweeper(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepEvery is how often the sweeper deletes expired sign-ins and sessions.
const sweepEvery = 10 * time.Minute

// sweep deletes expired login sessions and UI sessions, and sign-in
// failure counts untouched for a day, and usage counters older than
// usageDays (minute counters: usageMinutes). Every reader
// checks expiry itself, so this only keeps the tables small.
func (s *Server) sweep(ctx context.Context) {
	now := s.cfg.Now()
	if _, err := s.store.DeleteExpiredLoginSessions(ctx, now.Add(-time.Hour)); err != nil && ctx.Err() == nil {
		s.log.Error("delete expired login sessions", "err", err)
	}
	if _, err := s.store.DeleteExpiredUISessions(ctx, now); err != nil && ctx.Err() == nil {
		s.log.Error("delete expired UI sessions", "err", err)
	}
	if _, err := s.store.DeleteStaleSignInFailures(ctx, now.Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
		s.log.Error("delete stale sign-in failures", "err", err)
	}
	if err := s.store.DeleteUsageBefore(ctx, now.UTC().Unix()/86400-usageDays); err != nil && ctx.Err() == nil {
		s.log.Error("delete old usage counters", "err", err)
	}
	if err := s.store.DeleteMinutesBefore(ctx, now.Unix()/60-usageMinutes); err != nil && ctx.Err() == nil {
		s.log.Error("delete old minute counters", "err", err)
	}
	if err := s.store.DeleteExpiredNodeCredentials(ctx, now.Add(-time.Hour)); err != nil && ctx.Err() == nil {
		s.log.Error("delete expired node credentials", "err", err)
	}
}
