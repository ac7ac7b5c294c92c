// Package guard is the on-node guard: an http.Handler in front of the
// node's local model servers that answers only the mesh identities the
// policy allows, enforces the grant's limits, streams answers through
// without buffering them, and leaves one audit record per request.
//
// Who is asking comes only from the TCP source address of the connection,
// which the WireGuard engine's listener reports and cryptokey routing makes
// unforgeable, mapped through the newest netmap's peers. Headers, query
// parameters and bearer tokens are never consulted for identity; the
// identity-looking ones (Authorization, X-Forwarded-For, Forwarded,
// X-Real-IP, X-Moat-*) and every other header not on a short allowlist are
// dropped before the request goes upstream.
//
// The guard serves the model APIs of mesh/llmapi's table: the
// OpenAI-compatible /v1/chat/completions, /v1/completions, /v1/embeddings,
// /v1/responses, /v1/models and /v1/models/{model}, and Ollama's /api/chat,
// /api/generate, /api/embed, /api/embeddings (the legacy one), /api/show
// (model information: no tokens counted) and /api/tags. It does not
// translate between the two families: a model whose upstream is of kind
// "openai" is reachable only through /v1 and an "ollama" one only through
// /api (other requests get 400 saying which to use). The lists are
// answered by the guard itself from the netmap: the models this node
// serves through the list's family that the caller may use now. Paths
// under /mcp/ go to Config.MCP (node/mcpguard: MCP servers under per-tool
// grants) after the per-peer connection limit.
//
// Enforcement, in order: at most Config.MaxConnsPerPeer connections per
// peer (else 429 and the connection closes); caller known (else 403) and
// not expired (else 401, "run moat login"); then, before the body is
// read, an admission slot: a caller none of whose grants could admit one
// more request now (429), or with no grant here and a body over 16 KiB
// (403), is refused without the body being read; at most
// Config.MaxBodyReadsPerCaller bodies of one identity are read at once
// (the others wait, up to their deadline; else 429); body within
// Config.BodyTimeout of the headers (408 with "Connection: close"),
// within Config.MaxBodyBytes (413) and readable (400, naming the field).
// Any answer sent before the body was read to its end closes the
// connection. Then: model granted (policy.GuardTable;
// else 403 "model "x" is not granted to …; ask an admin"), MFA fresh
// enough for the grant (else 401, "run moat login"); model served here,
// not stopped at run time (SetModelUnavailable; 503 with the reason) and
// through this API family (404/503/400); then the request is shaped
// (output.go, docs/policy.md "What a request may ask for"): every field
// that multiplies or lengthens the answers (n, best_of, a batched
// prompt, the length fields, min_tokens, ignore_eos, background, Ollama's
// keep_alive, raw, template and load options) is capped in the body or
// refused with 400 naming it, each answer's length capped at the grant's
// maxTokens or else the model's maxOutputTokens. Then the grant's limits,
// counted per person (user id) or, for tagged callers, per device, and
// per grant, behind the limiter seam (limiter.go; today the node's own
// counters): the request reserves its worst case (prompt estimate plus
// the capped length times the answers) from tokens a minute (a token
// bucket holding a minute's allowance) and tokens a day (a UTC-day
// counter) and counts against requests a minute and concurrency; when
// it does not fit it is refused 429 with Retry-After, naming the limit.
// When it ends the reservation is settled to its real use, from the
// upstream's usage (for OpenAI streams the guard sets
// stream_options.include_usage and drops the usage-only chunk when the
// caller did not ask for it); without one it is estimated at 4 bytes a
// token. A stream whose estimated use passes what the tokens-a-minute or
// tokens-a-day budget had left when it started is cut with a final error
// event in the API's shape. The body forwarded is the caller's with only
// the changed values replaced (splice.go).
//
// Errors use the API's own shape: OpenAI's {"error":{"message","type",
// "code"}} (code is the refusal reason) on /v1, Ollama's {"error":"…"} on
// /api. GET /metrics serves Prometheus metrics to admins and to callers
// carrying one of Config.MetricsTags.
package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatmesh/moat/internal/upclient"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/screen"
)

// Guard is the on-node guard. Create it with New, give it netmaps with
// SetNetMap, serve it with Serve (or as an http.Handler on a server of
// your own) and stop it with Close.
type Guard struct {
	cfg     Config
	served  map[string]*upstream
	snap    atomic.Pointer[snapshot]
	limits  limiter
	days    *dayKeeper      // nil without Config.Counters
	abuse   *screen.Tracker // nil: off
	audit   AuditSink       // cfg.Audit, or a queue in front of it; nil: none
	queue   *audit.Queue    // the queue, when there is one
	metrics *metrics
	client  *upclient.Client // to the model servers
	// upstream is client, or an in-memory one in benchmarks. It must have
	// read a request's body for good when RoundTrip returns, as upclient
	// has (net/http's Transport may read on): a redacted body is a pooled
	// buffer that the call gives back when it is done (screenBuf).
	upstream http.RoundTripper
	hashWarn sync.Once
	prompts  *promptHasher // under cfg.AuditKey
	avail    availability  // models stopped at run time
	conns    *peerConns    // Serve's connections per peer
	reads    *readGate     // bodies being read per identity
	mu       struct {
		sync.Mutex
		servers map[*http.Server]bool
		closed  bool
	}
}

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("guard closed")

// New checks cfg and returns a guard that refuses everyone until its first
// netmap.
func New(cfg Config) (*Guard, error) {
	served, err := checkModels(cfg.Models, cfg.MCP != nil)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	local := newLocalLimiter()
	g := &Guard{cfg: cfg, served: served, limits: local, metrics: newMetrics()}
	for _, c := range append(g.runtimeCollectors(), cfg.Collectors...) {
		if err := g.metrics.reg.Register(c); err != nil {
			return nil, fmt.Errorf("guard: metrics collector: %w", err)
		}
	}
	g.mu.servers = make(map[*http.Server]bool)
	g.conns = newPeerConns(g.cfg.MaxConnsPerPeer)
	g.reads = newReadGate(g.cfg.MaxBodyReadsPerCaller)
	if g.cfg.Screen == nil {
		g.cfg.Screen = newPolicyScreen(cfg.Screening)
	}
	g.audit = cfg.Audit
	if cfg.Audit != nil && !cfg.AuditSync {
		g.queue = audit.NewQueue(cfg.Audit, audit.QueueOptions{OnError: func(err error, lost int) {
			g.cfg.Logger.Error("audit records lost", "records", lost, "err", err)
		}})
		g.audit = g.queue
	}
	if !cfg.Screening.NoAbuse {
		g.abuse = g.newTracker(cfg.Screening.Abuse)
	}
	g.client = upclient.New(upclient.Config{
		Dial:          (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		HeaderTimeout: cfg.UpstreamHeaderTimeout,
	})
	g.upstream = g.client
	g.prompts = newPromptHasher(cfg.AuditKey)
	if cfg.Leases != nil {
		ll := newLeaseLimiter(cfg.Leases, g.cfg.LeaseTimeout, g.cfg.Logger)
		g.limits, local = ll, ll.local
	}
	if cfg.Counters != nil {
		if g.days, err = startDayKeeper(cfg.Counters, local, cfg.Now, g.cfg.Logger); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// SetNetMap makes nm the netmap the guard enforces, atomically: requests
// already admitted finish under the netmap they started with. A netmap
// that cannot be compiled is refused with an error and the previous one
// stays in force; so does the last one when no new netmap arrives.
func (g *Guard) SetNetMap(nm *wire.NetMap) error {
	if nm == nil {
		return errors.New("guard: nil netmap")
	}
	s, err := buildSnapshot(nm, g.served)
	if err != nil {
		return err
	}
	if ns, ok := g.cfg.Screen.(netmapScreen); ok {
		if err := ns.prepare(s.rules); err != nil {
			return fmt.Errorf("guard: netmap %d: %w", nm.Seq, err)
		}
	}
	g.snap.Store(s)
	keep := make(map[string]bool, len(s.callers))
	for _, c := range s.callers {
		keep[c.limitKey] = true
	}
	g.limits.keep(keep)
	g.cfg.Logger.Info("guard netmap applied", "seq", nm.Seq, "peers", len(nm.Peers), "access_pairs", s.table.Len())
	return nil
}

// Serve answers requests on ln (the engine's listener on the node's mesh
// addresses) with the configured header and idle timeouts until Close,
// holding each peer to Config.MaxConnsPerPeer connections.
func (g *Guard) Serve(ln net.Listener) error {
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.cfg.Logger.Handler(), slog.LevelDebug),
	}
	return g.run(srv, ln)
}

// run serves srv on ln until Close or Shutdown.
func (g *Guard) run(srv *http.Server, ln net.Listener) error {
	if !g.track(srv, true) {
		return ErrClosed
	}
	defer g.track(srv, false)
	err := srv.Serve(&peerListener{Listener: ln, g: g})
	if errors.Is(err, http.ErrServerClosed) {
		return ErrClosed
	}
	return err
}

func (g *Guard) track(srv *http.Server, add bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if add && g.mu.closed {
		return false
	}
	if add {
		g.mu.servers[srv] = true
	} else {
		delete(g.mu.servers, srv)
	}
	return true
}

// Close stops every Serve, cutting the requests in flight (and with them
// their upstream requests), and drops idle upstream connections.
func (g *Guard) Close() error {
	g.mu.Lock()
	g.mu.closed = true
	servers := make([]*http.Server, 0, len(g.mu.servers))
	for s := range g.mu.servers {
		servers = append(servers, s)
	}
	g.mu.Unlock()
	for _, s := range servers {
		s.Close()
	}
	g.client.Close()
	g.closeQueue()
	return g.closeDays()
}

// Shutdown stops accepting requests and waits for those in flight, until
// ctx ends.
func (g *Guard) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.mu.closed = true
	servers := make([]*http.Server, 0, len(g.mu.servers))
	for s := range g.mu.servers {
		servers = append(servers, s)
	}
	g.mu.Unlock()
	var err error
	for _, s := range servers {
		err = errors.Join(err, s.Shutdown(ctx))
	}
	g.client.Close()
	g.closeQueue()
	return errors.Join(err, g.closeDays())
}

// closeDays writes the day counters a last time.
func (g *Guard) closeDays() error {
	if g.days == nil {
		return nil
	}
	return g.days.close()
}

// closeQueue writes the queued audit records. Requests still finishing
// afterwards write theirs synchronously.
func (g *Guard) closeQueue() {
	if g.queue != nil {
		g.queue.Close()
		if n := g.queue.Overflows(); n > 0 {
			g.cfg.Logger.Warn("audit queue was full at times; those records were written synchronously", "records", n)
		}
	}
}
