// Package client is the employee client as a library: a mesh member
// (key, engine, netmap stream) with the local model endpoint
// (mesh/router) on top, a control socket in the state directory
// (GET /status, POST /down) and a watch on the login file, so that a new
// sign-in or a sign-out takes effect in a running client. `moat up` is
// this package behind flags; the demo and the end-to-end tests run it
// too.
//
// The client reads the key and the login that a sign-in left in its
// state directory (see Dir). It never changes them. The local endpoint
// serves programs that pass the local API token from the same directory
// (Dir.Token, made on first use) and, on Linux, programs of the same user
// without it (mesh/router's callers.go).
package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/member"
	"github.com/moatmesh/moat/mesh/router"
	"github.com/moatmesh/moat/mesh/wire"
)

// Defaults for Config's zero values.
const (
	DefaultListen    = "127.0.0.1:4000"
	DefaultLoginPoll = time.Second
)

// Config configures a Client. Only StateDir is required.
type Config struct {
	// StateDir holds the device key and the login (see Dir); the control
	// socket is made there. Required.
	StateDir string
	// Listen is the address of the local OpenAI/Ollama endpoint,
	// HOST:PORT (port 0 picks a free one; Endpoint reports it). A host
	// that is not loopback is refused unless AllowAnyHost. Default
	// DefaultListen, 127.0.0.1:4000.
	Listen string
	// AllowAnyHost allows a non-loopback Listen and serves requests
	// whatever their Host and Origin (router.Config.AllowAnyHost): anyone
	// who reaches the endpoint uses the models as this device's person.
	// Default false.
	AllowAnyHost bool
	// Backend is engine.Netstack (the zero value: userspace, no
	// privileges) or engine.TUN (a kernel interface; needs root).
	Backend engine.Backend
	// ListenPort is the WireGuard UDP port. Default 0: a free port.
	ListenPort uint16
	// GuardPort is the TCP port of the nodes' guards on their mesh
	// addresses. Default router.DefaultGuardPort (80).
	GuardPort uint16
	// LoginPoll is how often the login file is checked for a change.
	// Default DefaultLoginPoll (1 s).
	LoginPoll time.Duration
	// Notify receives one line for the person each time what is wrong
	// changes ("connected to the coordinator" once nothing is). Calls
	// come one at a time. Default: none.
	Notify func(msg string)
	// Endpoints are extra addresses peers may reach this device's
	// WireGuard port at (a port forward; `moat up --endpoint`), reported
	// to the coordinator before the interface addresses and the public
	// address STUN saw. Default: none.
	Endpoints []netip.AddrPort
	// Logger receives the client's logs. Default: none.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.LoginPoll <= 0 {
		c.LoginPoll = DefaultLoginPoll
	}
	if c.Notify == nil {
		c.Notify = func(string) {}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Client is a running employee client. Its methods are safe for
// concurrent use.
type Client struct {
	cfg    Config
	dir    Dir
	member *member.Member
	rt     *router.Router
	apiLn  net.Listener // the local endpoint
	ctlLn  net.Listener // the control socket
	local  string       // the local endpoint's URL
	stop   context.CancelFunc
	done   context.Context // ends with Close or POST /down
	runs   sync.WaitGroup

	mu struct {
		sync.Mutex
		closed  bool
		login   *Login
		problem string // what is wrong right now, for people; "" = connected
	}
	notifyMu sync.Mutex // one Notify call at a time
}

// New checks that the device is signed in, opens the control socket and
// the local endpoint, and starts the member's engine. Run connects.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if cfg.StateDir == "" {
		return nil, errors.New("client: Config.StateDir is required")
	}
	if err := CheckListen(cfg.Listen, cfg.AllowAnyHost); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, dir: Dir(cfg.StateDir)}
	c.done, c.stop = context.WithCancel(context.Background())
	c.mu.problem = "connecting to the coordinator"
	if err := c.open(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// open reads the key and the login and opens everything Close closes.
func (c *Client) open() error {
	priv, err := c.dir.DeviceKey(false)
	if err != nil {
		return ErrNoLogin
	}
	if c.mu.login, err = c.dir.LoadLogin(); err != nil {
		return err
	}
	token, err := c.dir.Token(true)
	if err != nil {
		return err
	}
	if c.ctlLn, err = listenControl(c.dir); err != nil {
		return err
	}
	if c.apiLn, err = net.Listen("tcp", c.cfg.Listen); err != nil {
		return errors.New("local endpoint: " + err.Error())
	}
	c.local = "http://" + c.apiLn.Addr().String()
	c.member, err = member.New(member.Config{PrivateKey: priv, Backend: c.cfg.Backend, ListenPort: c.cfg.ListenPort,
		ReportEndpoints: true, ExtraEndpoints: c.cfg.Endpoints, Logger: c.cfg.Logger, OnStatus: c.onStatus})
	if err != nil {
		return err
	}
	c.rt, err = router.New(router.Config{Dialer: c.member.Engine(), GuardPort: c.cfg.GuardPort, AllowAnyHost: c.cfg.AllowAnyHost,
		Token: token, Logger: c.cfg.Logger})
	if err != nil {
		return err
	}
	c.member.AddSink(routerSink{c.rt})
	return nil
}

// Run serves the local endpoint and the control socket and keeps a
// netmap stream open with the login in the state directory, until ctx
// ends, Close is called or a POST /down arrives. It then shuts the
// servers down, waits for them and returns nil.
func (c *Client) Run(ctx context.Context) error {
	if !c.startRun() {
		return nil
	}
	defer c.runs.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.done, cancel)()
	api := &http.Server{Handler: c.rt, ConnContext: c.rt.ConnContext, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ctl := &http.Server{Handler: c.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() { api.Serve(c.apiLn) })
	wg.Go(func() { ctl.Serve(c.ctlLn) })
	wg.Go(func() { c.sessions(ctx) })
	<-ctx.Done()
	shut, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	api.Shutdown(shut)
	ctl.Shutdown(shut)
	wg.Wait()
	return nil
}

// startRun registers a Run, unless the client is closed.
func (c *Client) startRun() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return false
	}
	c.runs.Add(1)
	return true
}

// Close stops Run and waits for it, then closes the router, the member
// (engine and netmap stream) and the listeners.
func (c *Client) Close() error {
	c.mu.Lock()
	c.mu.closed = true
	c.mu.Unlock()
	c.stop()
	c.runs.Wait()
	if c.rt != nil {
		c.rt.Close()
	}
	if c.member != nil {
		c.member.Close()
	}
	for _, ln := range []net.Listener{c.apiLn, c.ctlLn} {
		if ln != nil {
			ln.Close()
		}
	}
	return nil
}

// Endpoint is the local endpoint's base URL, e.g. "http://127.0.0.1:4000";
// OpenAI clients use Endpoint()+"/v1".
func (c *Client) Endpoint() string { return c.local }

// Backend is the engine's backend.
func (c *Client) Backend() engine.Backend { return c.member.Engine().Backend() }

// Dial connects to a mesh address ("100.64.0.2:80") through the
// device's engine, as the router does.
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.member.Engine().Dial(ctx, network, addr)
}

// NetMap returns the netmap in use, nil before the first.
func (c *Client) NetMap() *wire.NetMap { return c.member.NetMap() }

// routerSink hands the member's netmaps to the router; a netmap also
// means the coordinator accepted the login.
type routerSink struct{ rt *router.Router }

func (s routerSink) SetNetMap(nm *wire.NetMap) error {
	s.rt.SetNetMap(nm)
	s.rt.SetLoginRequired("")
	return nil
}
