// Package router is the employee client's local model endpoint: an
// http.Handler that speaks the OpenAI (/v1/...) and Ollama (/api/...) APIs
// of mesh/llmapi's table on the device, reads only the "model" of each
// request (by exact key, as the guard does), and forwards the request over
// the mesh to the guard of a node that serves that model with the path's
// API family, as nodes advertise it (wire.Peer.APIs). /v1/models lists
// the models reachable with OpenAI's API, /api/tags those with Ollama's.
// /mcp/NAME relays MCP's Streamable HTTP to the node serving MCP server
// NAME (mcp.go), with only the transport's own headers.
//
// The router spreads requests over every node serving a model (least
// requests in flight, ties in turn), skips nodes that recently failed,
// and tries another node when one cannot be connected to, or does not
// acknowledge the request, before any byte of the answer was sent.
// Connections to nodes are kept alive and checked with every request
// (conns.go). Answers, streams included, pass through
// untouched and are flushed chunk by chunk. Only the local API token's
// holder, or (on Linux) a program of the same user, may call it
// (callers.go). Identity on the mesh comes
// from the WireGuard peer, so the router strips every identity header a
// local program may have set.
//
// The netmap is read through an atomic snapshot that SetNetMap replaces.
package router

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// Dialer connects to a mesh address. *engine.Engine satisfies it.
type Dialer interface {
	// Dial connects to addr ("100.64.0.2:80") over the mesh. It must
	// return when ctx ends.
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults for Config's zero values.
const (
	DefaultGuardPort      = 80
	DefaultConnectTimeout = 3 * time.Second
	DefaultMaxBodyBytes   = 32 << 20
	DefaultCooldown       = 10 * time.Second
	DefaultMaxAttempts    = 3
)

// Config configures a Router. Only Dialer is required.
type Config struct {
	// Dialer reaches the nodes, normally the device's engine. Required.
	Dialer Dialer
	// GuardPort is the TCP port nodes' guards listen on at their mesh
	// addresses. Default DefaultGuardPort (80).
	GuardPort uint16
	// ConnectTimeout bounds connecting to one node; after it the router
	// tries the next. Default DefaultConnectTimeout (3 s).
	ConnectTimeout time.Duration
	// MaxBodyBytes bounds a request body. Default DefaultMaxBodyBytes
	// (32 MiB, room for a few base64 images).
	MaxBodyBytes int64
	// Cooldown is how long a node that failed is tried only after the
	// others. Default DefaultCooldown (10 s).
	Cooldown time.Duration
	// MaxAttempts is how many nodes one request may try. Default
	// DefaultMaxAttempts (3).
	MaxAttempts int
	// AllowAnyHost turns off the loopback check: by default only requests
	// whose Host is a loopback name or address, and whose Origin (if any) is
	// a loopback page, are served, so that web pages cannot use the
	// endpoint through the person's browser (DNS rebinding, cross-site
	// POSTs). Set it only when serving beyond loopback on purpose.
	AllowAnyHost bool
	// Token is the local API token: a caller that sends it as
	// "Authorization: Bearer TOKEN" or "x-api-key: TOKEN" is served (see
	// callers.go). Callers whose socket belongs to the user running the
	// router need none where the system can tell (Linux, loopback).
	// Default "": only those callers are served.
	Token string
	// Logger receives one line per failed attempt. Default: none.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Router is the local model endpoint. Its methods are safe for concurrent
// use.
type Router struct {
	cfg   Config
	log   *slog.Logger
	tr    *http.Transport // MCP's; model requests use their node's (conns.go)
	snap  atomic.Pointer[snapshot]
	turn  atomic.Uint64 // round-robin tie breaker
	login atomic.Pointer[string]
	token *[sha256.Size]byte // of Config.Token; nil: no token is accepted
	uid   uint32             // this process's user: its callers need no token

	mu struct {
		sync.Mutex
		states map[key.Public]*nodeState // survives netmap changes
		closed bool
	}
}

// ErrClosed is what requests get after Close (as a 503).
var ErrClosed = errors.New("router: closed")

// New returns a router with no netmap: it answers 503 until SetNetMap.
func New(cfg Config) (*Router, error) {
	if cfg.Dialer == nil {
		return nil, errors.New("router: Config.Dialer is required")
	}
	setDefaults(&cfg)
	r := &Router{cfg: cfg, log: cfg.Logger, uid: uint32(os.Geteuid())}
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		r.token = &sum
	}
	r.mu.states = map[key.Public]*nodeState{}
	r.tr = &http.Transport{
		DialContext:        r.dial,
		DisableCompression: true, // pass Accept-Encoding and bodies through as they are
		// MCP sessions get a connection of their own: their requests carry
		// no liveness check (conns.go), and a kept-alive connection to a
		// node that went away would swallow the next one.
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}
	return r, nil
}

func setDefaults(cfg *Config) {
	if cfg.GuardPort == 0 {
		cfg.GuardPort = DefaultGuardPort
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

// dial connects to a node within the connect timeout.
func (r *Router) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	c, err := r.cfg.Dialer.Dial(ctx, network, addr)
	if err != nil {
		return nil, &dialError{err: err}
	}
	return c, nil
}

// dialError marks a failure to connect: the node never saw the request,
// so another node may always be tried.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// SetNetMap makes nm the netmap requests are routed by. nm must not be
// modified afterwards; nil means not connected.
func (r *Router) SetNetMap(nm *wire.NetMap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := buildSnapshot(nm, r.cfg.GuardPort, r.mu.states, func() *nodeState {
		return &nodeState{client: r.newNodeClient()}
	})
	for k, st := range r.mu.states {
		if s.states[k] == nil {
			st.client.Close() // the node left the netmap
		}
	}
	r.mu.states = s.states
	r.snap.Store(s)
}

// SetLoginRequired makes every request answer 401 with why (e.g. "the
// coordinator refused this device's credential") and the advice to run
// `moat login`, until it is called with "". A netmap whose own identity
// has expired has the same effect without a call.
func (r *Router) SetLoginRequired(why string) {
	if why == "" {
		r.login.Store(nil)
		return
	}
	r.login.Store(&why)
}

// Close stops serving: later requests get a 503, idle connections to
// nodes are closed. Requests in flight finish on their own.
func (r *Router) Close() error {
	r.mu.Lock()
	r.mu.closed = true
	for _, st := range r.mu.states {
		st.client.Close()
	}
	r.mu.Unlock()
	r.tr.CloseIdleConnections()
	return nil
}

func (r *Router) closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.closed
}
