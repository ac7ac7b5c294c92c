package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/policy"
)

// Server is a coordinator: an http.Handler plus the goroutine that keeps
// every device's netmap current. Close stops it.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store store.Store
	box   *seal.Box
	hub   *hub
	auth  *authenticator
	mx    *metrics

	handler http.Handler
	poke    chan struct{} // cap 1: recompute netmaps soon
	stop    context.CancelFunc
	wg      sync.WaitGroup

	mu struct {
		sync.Mutex
		policy     *policy.Policy // the policy in force, compiled
		policyID   int64
		nextExpiry time.Time
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
	s, err := newServer(ctx, cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

func newServer(ctx context.Context, cfg Config, st store.Store) (*Server, error) {
	key, err := seal.LoadOrCreateKey(filepath.Join(cfg.DataDir, "seal.key"))
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, box: seal.New(key), hub: newHub(cfg.Now()), poke: make(chan struct{}, 1)}
	s.mx = newMetrics(s)
	if err := s.loadPolicy(ctx); err != nil {
		return nil, err
	}
	if s.auth, err = newAuthenticator(ctx, s); err != nil {
		return nil, err
	}
	if err := s.recompute(ctx); err != nil {
		s.auth.close()
		return nil, err
	}
	s.handler = s.routes()
	loopCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(1)
	go s.loop(loopCtx)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Store returns the coordinator's store (for the CLI's user commands).
func (s *Server) Store() store.Store { return s.store }

// Close stops the netmap loop and closes the store. Open streams end.
func (s *Server) Close() error {
	s.stop()
	s.wg.Wait()
	s.auth.close()
	return s.store.Close()
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
	s.mu.policy, s.mu.policyID = p, id
	s.mu.Unlock()
	return nil
}

// changed asks the loop to recompute netmaps soon. Changes that arrive
// while a recompute runs are folded into the next one.
func (s *Server) changed() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// loop recomputes netmaps when poked, when a device key expires, and
// periodically (which also picks up changes other replicas made).
func (s *Server) loop(ctx context.Context) {
	defer s.wg.Done()
	const resync = 5 * time.Second
	t := time.NewTimer(resync)
	defer t.Stop()
	var swept time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.poke:
		case <-t.C:
		}
		// Another replica may have saved a policy: read the one in force
		// before every recompute (one small query).
		if err := s.loadPolicy(ctx); err != nil {
			s.log.Error("reload policy", "err", err)
		}
		if err := s.recompute(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("recompute netmaps", "err", err)
		}
		if time.Since(swept) >= sweepEvery {
			s.sweep(ctx)
			swept = time.Now()
		}
		t.Reset(s.untilNextWake(resync))
	}
}

// sweepEvery is how often the loop deletes expired sign-ins and sessions.
const sweepEvery = 10 * time.Minute

// sweep deletes expired login sessions and UI sessions. Every reader
// checks expiry itself, so this only keeps the tables small.
func (s *Server) sweep(ctx context.Context) {
	now := s.cfg.Now()
	if _, err := s.store.DeleteExpiredLoginSessions(ctx, now.Add(-time.Hour)); err != nil && ctx.Err() == nil {
		s.log.Error("delete expired login sessions", "err", err)
	}
	if _, err := s.store.DeleteExpiredUISessions(ctx, now); err != nil && ctx.Err() == nil {
		s.log.Error("delete expired UI sessions", "err", err)
	}
}

func (s *Server) untilNextWake(limit time.Duration) time.Duration {
	s.mu.Lock()
	next := s.mu.nextExpiry
	s.mu.Unlock()
	if next.IsZero() {
		return limit
	}
	return min(limit, max(next.Sub(s.cfg.Now()), 0)+time.Millisecond)
}

// recompute reads the mesh from the store, compiles the policy and hands
// the hub the new netmaps; only devices whose netmap changed are woken.
func (s *Server) recompute(ctx context.Context) error {
	start := time.Now() // also the snapshot's time, for the hub's drops
	st, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	maps, next, err := st.netmaps()
	if err != nil {
		return err
	}
	woken := s.hub.update(maps, start, st.now)
	s.mu.Lock()
	s.mu.nextExpiry = next
	s.mu.Unlock()
	s.mx.recompute.Observe(time.Since(start).Seconds())
	if len(woken) > 0 {
		s.log.Debug("netmaps updated", "devices", len(maps), "changed", len(woken), "took", time.Since(start))
	}
	return nil
}

func (s *Server) snapshot(ctx context.Context) (*meshState, error) {
	devices, err := s.store.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	users, err := s.store.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	st := &meshState{devices: devices, users: make(map[string]*store.User, len(users)), now: s.cfg.Now()}
	for _, u := range users {
		st.users[u.ID] = u
	}
	s.mu.Lock()
	st.policy = s.mu.policy
	s.mu.Unlock()
	return st, nil
}

func init() { gin.SetMode(gin.ReleaseMode) }
