package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go4.org/mem"
	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	tskey "tailscale.com/types/key"

	"github.com/moatmesh/moat/mesh/key"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL of the relay, "https://HOST[:PORT]/derp". Required. Plain http
	// is for tests only.
	URL string
	// PrivateKey is the member's WireGuard key, its identity at the relay.
	// Required.
	PrivateKey key.Private
	// TLS verifies the relay's certificate (a coordinator's pin, say).
	// Default: the system roots, with ServerName from URL.
	TLS *tls.Config
	// Proxy, when set, is an HTTP proxy ("http://HOST:PORT") the client
	// reaches the relay through with CONNECT. Default: none.
	Proxy *url.URL
	// Logger receives connection changes. Default: none.
	Logger *slog.Logger
	// OnConnect is called with the client, on its goroutine, each time
	// the connection comes up. Default: none.
	OnConnect func(*Client)
	// Recv, when set, is where received packets go, straight from the
	// client's receive loop (a reader of its own channel would add a
	// goroutine hand-off per packet); the client never closes it. A packet
	// that finds it full is dropped, as a full link would drop it.
	// Default: a channel of the client's own (Client.Recv), closed by
	// Close.
	Recv chan Packet
}

// Packet is one packet received through the relay.
type Packet struct {
	From key.Public
	Data []byte
}

// Release hands p's buffer back for the packets that follow; p.Data must
// not be used after. Optional: an unreleased buffer is collected.
func (p Packet) Release() {
	if cap(p.Data) == pooledPacket {
		b := p.Data[:0]
		packetBufs.Put(&b)
	}
}

// pooledPacket is the size of the buffers received packets are copied
// into (a WireGuard packet at the usual MTUs fits); larger ones get their
// own.
const pooledPacket = 2048

var packetBufs = sync.Pool{New: func() any { b := make([]byte, 0, pooledPacket); return &b }}

// packetData copies src, which DERP reuses, into a buffer of its own.
func packetData(src []byte) []byte {
	if len(src) > pooledPacket {
		return append([]byte(nil), src...)
	}
	return append((*packetBufs.Get().(*[]byte))[:0], src...)
}

// Client is a member's connection to a relay. It connects at once and
// reconnects, with backoff, whenever the connection breaks, until Close.
type Client struct {
	cfg       ClientConfig
	log       *slog.Logger
	dc        *derphttp.Client
	recv      chan Packet // cfg.Recv, or the client's own
	connected atomic.Bool
	conn      atomic.Pointer[corkConn] // the connection last dialled (cork.go)
	lastErr   atomic.Pointer[error]
	heard     atomic.Int64 // when the relay last sent anything, Unix ns (live.go)
	sent      atomic.Int64 // when this client last sent a packet, Unix ns
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// ErrNotConnected is what Send returns while the relay is not connected.
var ErrNotConnected = errors.New("relay: not connected")

// NewClient starts a client. Packets arrive on Recv.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.PrivateKey.IsZero() {
		return nil, errors.New("relay: ClientConfig.PrivateKey is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	raw, err := hex.DecodeString(cfg.PrivateKey.Hex())
	if err != nil {
		return nil, err
	}
	dc, err := derphttp.NewClient(tskey.NodePrivateFromRaw32(mem.B(raw)), plainURL(u), func(format string, args ...any) {
		log.Debug("relay client: " + fmt.Sprintf(format, args...))
	}, netmon.NewStatic())
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: log, dc: dc, recv: cfg.Recv, done: make(chan struct{})}
	if c.recv == nil {
		c.recv = make(chan Packet, 256)
	}
	dc.SetURLDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dialRelay(ctx, u, addr, cfg.Proxy, cfg.TLS)
		if err != nil {
			return nil, err
		}
		cc := &corkConn{Conn: nc}
		c.conn.Store(cc)
		return cc, nil
	})
	c.wg.Add(2)
	go c.loop()
	go c.watch()
	return c, nil
}

// URL returns the relay's URL.
func (c *Client) URL() string { return c.cfg.URL }

// Connected reports whether the relay connection is up.
func (c *Client) Connected() bool { return c.connected.Load() }

// Err returns why the last connection attempt failed or the connection
// broke; nil while connected or before the first attempt ended.
func (c *Client) Err() error {
	if p := c.lastErr.Load(); p != nil && !c.connected.Load() {
		return *p
	}
	return nil
}

// Recv returns the channel of received packets (ClientConfig.Recv, if
// set); a channel of the client's own is closed by Close.
func (c *Client) Recv() <-chan Packet { return c.recv }

// Send sends b to the member with key to. It fails at once when the
// relay is not connected.
func (c *Client) Send(to key.Public, b []byte) error {
	if !c.connected.Load() {
		return ErrNotConnected
	}
	c.sent.Store(time.Now().UnixNano())
	return c.dc.Send(nodePublic(to), b)
}

// SendBatch sends each of bufs to the member with key to, in one write
// to the relay (cork.go). It fails at once when the relay is not
// connected.
func (c *Client) SendBatch(to key.Public, bufs [][]byte) (err error) {
	if !c.connected.Load() {
		return ErrNotConnected
	}
	c.sent.Store(time.Now().UnixNano())
	if cc := c.conn.Load(); cc != nil && len(bufs) > 1 {
		cc.cork()
		defer func() { err = errors.Join(err, cc.uncork()) }()
	}
	for _, b := range bufs {
		err = errors.Join(err, c.dc.Send(nodePublic(to), b))
	}
	return err
}

// Close ends the connection and the receive loop.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.dc.Close()
		c.wg.Wait()
		if c.cfg.Recv == nil {
			close(c.recv)
		}
	})
	return nil
}

// Backoff between reconnection attempts.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// loop receives until Close, reconnecting after failures.
func (c *Client) loop() {
	defer c.wg.Done()
	backoff := minBackoff
	for {
		m, err := c.dc.Recv() // connects when not connected
		if err != nil {
			if !c.connected.Load() && errors.Is(err, io.EOF) {
				// The server hung up before its first message: DERP
				// closes the connection of a key it does not admit.
				err = fmt.Errorf("the relay closed the connection before admitting this member (a key the coordinator does not know, revoked or expired?): %w", err)
			}
			c.lastErr.Store(&err)
			if c.connected.Swap(false) {
				c.log.Warn("relay connection lost; reconnecting", "relay", c.cfg.URL, "err", err)
			} else {
				c.log.Debug("relay connect failed", "relay", c.cfg.URL, "err", err)
			}
			select {
			case <-c.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if !c.connected.Swap(true) {
			c.heard.Store(time.Now().UnixNano())
			c.log.Info("relay connected", "relay", c.cfg.URL)
			if c.cfg.OnConnect != nil {
				c.cfg.OnConnect(c)
			}
		}
		backoff = minBackoff
		c.heard.Store(time.Now().UnixNano())
		if p, ok := m.(derp.ReceivedPacket); ok {
			pkt := Packet{From: publicOf(p.Source), Data: packetData(p.Data)}
			select {
			case c.recv <- pkt:
			case <-c.done:
				return
			default: // the reader is behind: drop, as a full link would
				pkt.Release()
			}
		}
	}
}

// dialRelay opens the TCP connection to the relay at u (through proxy
// when set) and does TLS for https URLs, verifying with tlsConf (nil:
// the system roots).
func dialRelay(ctx context.Context, u *url.URL, addr string, proxy *url.URL, tlsConf *tls.Config) (net.Conn, error) {
	var d net.Dialer
	var nc net.Conn
	var err error
	if proxy != nil {
		nc, err = dialConnect(ctx, proxy, addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil || u.Scheme != "https" {
		return nc, err
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if tlsConf != nil {
		conf = tlsConf.Clone()
	}
	if conf.ServerName == "" {
		conf.ServerName = u.Hostname()
	}
	// DERP upgrades an HTTP/1.1 connection; a server offered h2 (as an
	// HTTP client's TLS configuration does) would pick it.
	conf.NextProtos = []string{"http/1.1"}
	tc := tls.Client(nc, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("relay TLS: %w", err)
	}
	return tc, nil
}

// parseURL parses a relay's URL.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("relay URL %q: want https://HOST[:PORT]/derp", s)
	}
	return u, nil
}

// plainURL is u for derphttp, which speaks plain HTTP to what
// dialRelay returns: dialRelay does TLS itself, with moat's verification
// (a pinned coordinator certificate) and through a proxy when one is set.
func plainURL(u *url.URL) string {
	plain := *u
	plain.Scheme = "http"
	return plain.String()
}

// dialConnect opens a tunnel to addr through an HTTP proxy with CONNECT.
func dialConnect(ctx context.Context, proxy *url.URL, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", proxy.Host)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", proxy.Host, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if err := req.Write(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Host, err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("proxy %s: %w", proxy.Host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		nc.Close()
		return nil, fmt.Errorf("proxy %s refused CONNECT to %s: %s", proxy.Host, addr, resp.Status)
	}
	if br.Buffered() > 0 {
		nc.Close()
		return nil, fmt.Errorf("proxy %s sent data before the tunnel was up", proxy.Host)
	}
	nc.SetDeadline(time.Time{})
	return nc, nil
}
