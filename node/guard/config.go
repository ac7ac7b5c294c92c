package guard

import (
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/node/audit"
)

// Upstream kinds: the API family a model server speaks (llmapi.Family).
const (
	KindOpenAI = string(llmapi.OpenAI) // vLLM, llama.cpp server, TGI, Ollama's /v1
	KindOllama = string(llmapi.Ollama) // Ollama's native /api
)

// Upstream is the local model server behind one model name.
type Upstream struct {
	// URL is the server's base, e.g. "http://127.0.0.1:8000". Required.
	// It must be plain http on a loopback address (127.0.0.1 or [::1])
	// with an explicit port; a path is kept as a prefix of the API paths.
	URL string
	// Kind is KindOpenAI or KindOllama. Required. An openai-kind upstream
	// serves only the /v1 APIs and an ollama-kind one only the /api ones:
	// the guard does not translate between them and answers 400 when a
	// caller uses the other family.
	Kind string
	// UpstreamModel is the model name sent upstream; empty: the same name.
	UpstreamModel string
	// Header is added to every request sent upstream (e.g. the server's
	// own "Authorization: Bearer …"); nil: none. The caller's
	// Authorization header is never forwarded.
	Header http.Header
}

// AuditSink receives one record per model request. *audit.Spool is one
// (and its AppendBatch is used when present). Append must be safe for
// concurrent use. By default the guard queues records (audit.Queue) and
// one goroutine writes them in batches; see Config.AuditSync.
type AuditSink interface {
	Append(rec *audit.Record) error
}

// Config configures a Guard. Models is required; every other zero value
// has the default given on its field.
type Config struct {
	// Models maps the model names callers use to the local servers.
	// Required unless MCP is set.
	Models map[string]Upstream
	// MCP answers the requests under llmapi.MCPPrefix (node/mcpguard),
	// after the per-peer connection limit and before anything else the
	// guard does. Default: nil, those paths are not found.
	MCP http.Handler
	// NodeName and NodeID name this node in audit records. Default: empty.
	NodeName, NodeID string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives operational messages. Default: discard.
	Logger *slog.Logger
	// Audit receives the audit records; nil: no records are kept.
	Audit AuditSink
	// AuditSync writes each record on the request's path, after the answer
	// has been sent. Default false: records are queued in memory (bounded;
	// a full queue makes the request write its record itself, nothing is
	// dropped) and written in batches by one goroutine, so a crash of the
	// process can lose the last few milliseconds of records; Close and
	// Shutdown write what is queued. Whether written records are fsynced
	// is the sink's policy (audit.Options.Sync).
	AuditSync bool
	// AuditKey is the HMAC key for grants whose audit setting is "hash".
	// Empty: such grants record no prompt hash (a warning is logged once).
	AuditKey []byte
	// Screen screens inputs and outputs. Nil: the built-in screening,
	// which applies each grant's Guard settings with node/screen and is
	// configured by Screening.
	Screen Screen
	// Screening configures the built-in screening and the abuse tracker;
	// see ScreenOptions for what its zero value does. The tracker also
	// runs when Screen is set.
	Screening ScreenOptions
	// Counters keeps the day's token counters (tokensPerDay, when they
	// count on this node: without Leases) across restarts: loaded by New,
	// saved at most once a second while they change and once more by
	// Close or Shutdown, so a crash loses at most the last second's
	// counts. Damaged data makes New fail. Default nil: the counters live
	// in memory only.
	Counters CounterStore
	// Leases, when set, makes rpm, tpm, tokensPerDay and the policy's
	// budgets count for the organisation: the guard leases each person's
	// limits from the coordinator (leases.go, docs/policy.md) instead of
	// counting them on this node; concurrency still counts here. The
	// node sets it when it has a coordinator. Default nil: every limit
	// counts on this node only (the day's tokens kept in Counters) and
	// budgets are not enforced.
	Leases LeaseSource
	// LeaseTimeout bounds one lease request to the coordinator; a request
	// that needs a lease waits for it that long at most. Default 3s.
	LeaseTimeout time.Duration
	// NoMFA, when set, says why no caller here can prove a second factor
	// (on a tailnet the node cannot know when anyone last did one): a
	// request that only a grant demanding MFA would allow is refused 403
	// with this reason instead of being sent to `moat login`. Default "":
	// MFA is judged from the netmap's identities.
	NoMFA string
	// MetricsTags lists the tags whose callers may GET /metrics. Callers
	// whose identity is Admin may always. Default: none (admins only).
	MetricsTags []string
	// Collectors are served on /metrics beside the guard's own (the node
	// adds its lockdown counters). Default: none.
	Collectors []prometheus.Collector

	// MaxBodyBytes bounds a request body. Default 8 MiB.
	MaxBodyBytes int64
	// MaxResponseBytes bounds a non-streamed answer. Default 64 MiB.
	MaxResponseBytes int64
	// MaxEventBytes bounds one streamed event (SSE event or NDJSON line).
	// Default 1 MiB.
	MaxEventBytes int
	// ReadHeaderTimeout bounds reading a request's headers (Serve).
	// Default 10s.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body, counted from the end of
	// its headers. A body not complete by then is answered 408 with
	// "Connection: close" and the connection ends; the read deadline is
	// kept, so nothing waits for the rest. Default 60s.
	BodyTimeout time.Duration
	// MaxConnsPerPeer bounds the connections one peer (one WireGuard key,
	// both its mesh addresses; an address the netmap does not know counts
	// on its own) may hold open to Serve at once. A connection over the
	// bound is answered 429 "too_many_connections" and closed before its
	// request is read. The router opens one connection per request, so
	// this is also the most requests one device can have at once, and it
	// bounds what one member's slow bodies can hold (docs/guard.md).
	// Default 64.
	MaxConnsPerPeer int
	// MaxBodyReadsPerCaller bounds the request bodies of one identity
	// (a person, or a tagged device) the guard reads at once; further
	// requests wait for a turn until their BodyTimeout (then 429
	// "too_many_bodies"). With MaxBodyBytes this bounds the memory a
	// caller can hold with bodies it never finishes sending. Default 4.
	MaxBodyReadsPerCaller int
	// IdleTimeout closes idle caller connections (Serve). Default 120s.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to an upstream. Default 5s.
	DialTimeout time.Duration
	// UpstreamHeaderTimeout bounds the wait for the upstream's response
	// headers (a non-streamed answer arrives whole, so this is also the
	// longest non-streamed generation). Default 5 min.
	UpstreamHeaderTimeout time.Duration
	// UpstreamIdleTimeout bounds the silence between two streamed events.
	// Default 2 min.
	UpstreamIdleTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	defN(&c.MaxBodyBytes, 8<<20)
	defN(&c.MaxResponseBytes, 64<<20)
	defN(&c.MaxEventBytes, 1<<20)
	defN(&c.ReadHeaderTimeout, 10*time.Second)
	defN(&c.BodyTimeout, 60*time.Second)
	defN(&c.IdleTimeout, 120*time.Second)
	defN(&c.MaxConnsPerPeer, 64)
	defN(&c.MaxBodyReadsPerCaller, 4)
	defN(&c.DialTimeout, 5*time.Second)
	defN(&c.LeaseTimeout, 3*time.Second)
	defN(&c.UpstreamHeaderTimeout, 5*time.Minute)
	defN(&c.UpstreamIdleTimeout, 2*time.Minute)
}

func defN[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// upstream is a checked Upstream.
type upstream struct {
	Upstream
	base  string // URL without a trailing slash
	model string // name sent upstream
}

func checkUpstream(name string, u Upstream) (*upstream, error) {
	if u.Kind != KindOpenAI && u.Kind != KindOllama {
		return nil, fmt.Errorf("model %q: kind %q: want %q or %q", name, u.Kind, KindOpenAI, KindOllama)
	}
	p, err := url.Parse(u.URL)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	host, err := netip.ParseAddrPort(p.Host)
	if p.Scheme != "http" || err != nil || !host.Addr().IsLoopback() || p.User != nil || p.RawQuery != "" {
		return nil, fmt.Errorf("model %q: upstream %q: want http://127.0.0.1:PORT or http://[::1]:PORT (the model server must listen on loopback only)", name, u.URL)
	}
	up := &upstream{Upstream: u, base: strings.TrimSuffix(u.URL, "/"), model: u.UpstreamModel}
	if up.model == "" {
		up.model = name
	}
	return up, nil
}

func checkModels(models map[string]Upstream, mcp bool) (map[string]*upstream, error) {
	if len(models) == 0 && !mcp {
		return nil, errors.New("guard: no models configured")
	}
	out := make(map[string]*upstream, len(models))
	for name, u := range models {
		if name == "" {
			return nil, errors.New("guard: a model has an empty name")
		}
		up, err := checkUpstream(name, u)
		if err != nil {
			return nil, fmt.Errorf("guard: %w", err)
		}
		out[name] = up
	}
	return out, nil
}
