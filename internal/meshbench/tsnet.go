package meshbench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/derp"
	"tailscale.com/envknob"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/logtail"
	"tailscale.com/net/netns"
	"tailscale.com/net/stun"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

const (
	// tsnetWarmup is how long bulk data flows before the measured window
	// starts, so that TCP windows, WireGuard batching and magicsock's path
	// are in steady state.
	tsnetWarmup = 500 * time.Millisecond

	// tsnetSetupTimeout bounds bringing up control, DERP and both nodes and
	// waiting for a direct UDP path between them.
	tsnetSetupTimeout = 45 * time.Second

	// tsnetBenchPort is the tailnet TCP port the receiver listens on.
	tsnetBenchPort = 5201

	// tsnetChunk is the size of each write and read on the bulk stream.
	tsnetChunk = 256 << 10
)

// tsnetResult is what one tsnet measurement observed.
type tsnetResult struct {
	bitsPerSec float64
	bytes      int64         // bytes received inside the measured window
	elapsed    time.Duration // length of the measured window
	path       string        // sender's direct UDP endpoint for the receiver
}

// tsnetMu serialises measurements: netns enablement and the tailscale env
// knobs are process-wide.
var tsnetMu sync.Mutex

// TsnetThroughput starts tailscale's test control server (tstest/integration/testcontrol)
// and a DERP/STUN setup as tsnet's own tests do, two tsnet.Server instances in this
// process on loopback, and measures TCP bulk throughput from one to the other over the
// tailnet for the given duration (after a short warm-up). It returns bits per second.
// Everything it started is closed before it returns.
//
// The DERP server is a minimal in-process relay (loopDERP) rather than
// derp/derpserver, which needs modules go.mod does not list; DERP only
// carries the first handshake and disco messages here.
//
// The measurement is taken only once both nodes use a direct UDP path to
// each other (as tsnet's mustDirect checks); if magicsock does not find one,
// TsnetThroughput fails rather than report a DERP-relayed rate. Throughput is
// counted at the receiver.
//
// Side effects on the process, which are needed to keep tailscale's code on
// loopback and quiet: it sets TS_NO_LOGS_NO_SUPPORT, TS_DISABLE_PORTMAPPER and
// TS_ASSUME_NETWORK_UP_FOR_TEST through envknob, and calls logtail.Disable.
// These stay set after it returns. Calls are serialised.
func TsnetThroughput(ctx context.Context, d time.Duration) (bitsPerSec float64, err error) {
	r, err := tsnetThroughput(ctx, d)
	if err != nil {
		return 0, err
	}
	return r.bitsPerSec, nil
}

func tsnetThroughput(ctx context.Context, d time.Duration) (res tsnetResult, err error) {
	if d <= 0 {
		return res, fmt.Errorf("meshbench: tsnet: duration %v must be positive", d)
	}
	tsnetMu.Lock()
	defer tsnetMu.Unlock()

	quietTailscale()
	// As tsnet's startControl does (Corp#4520): no netns socket marking.
	netns.SetEnabled(false)
	defer netns.SetEnabled(true)

	// Everything started is torn down in reverse order, on every return path.
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	dir, err := os.MkdirTemp("", "moat-tsnet-bench-")
	if err != nil {
		return res, fmt.Errorf("meshbench: tsnet: %w", err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })

	derpMap, stopDERP, err := startDERPAndSTUN("127.0.0.1")
	if err != nil {
		return res, fmt.Errorf("meshbench: tsnet: %w", err)
	}
	cleanups = append(cleanups, stopDERP)

	control := &testcontrol.Server{
		DERPMap:        derpMap,
		DNSConfig:      &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain: "tail-scale.ts.net",
		Logf:           logger.Discard,
	}
	control.HTTPTestServer = httptest.NewUnstartedServer(control)
	control.HTTPTestServer.Config.ErrorLog = log.New(io.Discard, "", 0)
	control.HTTPTestServer.Start()
	cleanups = append(cleanups, func() {
		control.HTTPTestServer.CloseClientConnections()
		control.HTTPTestServer.Close()
	})
	controlURL := control.HTTPTestServer.URL

	setupCtx, cancelSetup := context.WithTimeout(ctx, tsnetSetupTimeout)
	defer cancelSetup()

	// Both nodes are closed concurrently (each Close may wait on its own
	// shutdown), and before the control and DERP servers go away.
	var nodes []*tsnet.Server
	cleanups = append(cleanups, func() {
		var wg sync.WaitGroup
		for _, s := range nodes {
			wg.Go(func() { s.Close() })
		}
		wg.Wait()
	})
	startNode := func(hostname string) (*tsnet.Server, netip.Addr, key.NodePublic, error) {
		s := &tsnet.Server{
			Dir:        filepath.Join(dir, hostname),
			ControlURL: controlURL,
			Hostname:   hostname,
			Store:      new(mem.Store),
			Ephemeral:  true,
			Logf:       logger.Discard,
			UserLogf:   logger.Discard,
		}
		if err := os.MkdirAll(s.Dir, 0o700); err != nil {
			return nil, netip.Addr{}, key.NodePublic{}, err
		}
		nodes = append(nodes, s)
		st, err := s.Up(setupCtx)
		if err != nil {
			return nil, netip.Addr{}, key.NodePublic{}, fmt.Errorf("%s: up: %w", hostname, err)
		}
		if len(st.TailscaleIPs) == 0 || st.Self == nil {
			return nil, netip.Addr{}, key.NodePublic{}, fmt.Errorf("%s: up: no tailscale IP", hostname)
		}
		if err := waitForHomeDERP(setupCtx, s); err != nil {
			return nil, netip.Addr{}, key.NodePublic{}, fmt.Errorf("%s: %w", hostname, err)
		}
		return s, st.TailscaleIPs[0], st.Self.PublicKey, nil
	}
	recv, recvIP, recvKey, err := startNode("moat-bench-recv")
	if err != nil {
		return res, fmt.Errorf("meshbench: tsnet: %w", err)
	}
	send, _, sendKey, err := startNode("moat-bench-send")
	if err != nil {
		return res, fmt.Errorf("meshbench: tsnet: %w", err)
	}

	res.path, err = waitDirect(setupCtx, send, recv, recvIP, sendKey, recvKey)
	if err != nil {
		return res, fmt.Errorf("meshbench: tsnet: %w", err)
	}

	ln, err := recv.Listen("tcp", fmt.Sprintf(":%d", tsnetBenchPort))
	if err != nil {
		return res, fmt.Errorf("meshbench: tsnet: listen: %w", err)
	}
	cleanups = append(cleanups, func() { ln.Close() })

	// Receiver: accept one connection and count what arrives.
	var (
		received atomic.Int64
		rmu      sync.Mutex
		rconn    net.Conn // the accepted connection, guarded by rmu
		rclosed  bool     // the stream is being torn down, guarded by rmu
	)
	recvDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			recvDone <- err
			return
		}
		rmu.Lock()
		if rclosed {
			rmu.Unlock()
			c.Close()
			recvDone <- net.ErrClosed
			return
		}
		rconn = c
		rmu.Unlock()
		buf := make([]byte, tsnetChunk)
		for {
			n, err := c.Read(buf)
			received.Add(int64(n))
			if err != nil {
				recvDone <- err
				return
			}
		}
	}()

	conn, err := send.Dial(setupCtx, "tcp", netip.AddrPortFrom(recvIP, tsnetBenchPort).String())
	if err != nil {
		return res, fmt.Errorf("meshbench: tsnet: dial: %w", err)
	}
	cancelSetup()

	// Sender: write until the connection is closed.
	sendDone := make(chan error, 1)
	go func() {
		buf := make([]byte, tsnetChunk)
		for i := range buf {
			buf[i] = byte(i)
		}
		for {
			if _, err := conn.Write(buf); err != nil {
				sendDone <- err
				return
			}
		}
	}()
	// Stop the stream before the nodes are closed, and wait for both ends.
	cleanups = append(cleanups, func() {
		conn.Close()
		ln.Close()
		rmu.Lock()
		rclosed = true
		if rconn != nil {
			rconn.Close()
		}
		rmu.Unlock()
		<-sendDone
		<-recvDone
	})

	sleep := func(t time.Duration) error {
		timer := time.NewTimer(t)
		defer timer.Stop()
		select {
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case err := <-sendDone:
			sendDone <- err // keep it for the cleanup
			return fmt.Errorf("sender stopped early: %w", err)
		case err := <-recvDone:
			recvDone <- err
			return fmt.Errorf("receiver stopped early: %w", err)
		}
	}
	if err := sleep(tsnetWarmup); err != nil {
		return res, fmt.Errorf("meshbench: tsnet: warm-up: %w", err)
	}
	b0, t0 := received.Load(), time.Now()
	if err := sleep(d); err != nil {
		return res, fmt.Errorf("meshbench: tsnet: measuring: %w", err)
	}
	b1, t1 := received.Load(), time.Now()

	res.bytes = b1 - b0
	res.elapsed = t1.Sub(t0)
	if res.bytes <= 0 {
		return res, errors.New("meshbench: tsnet: no data received in the measured window")
	}
	res.bitsPerSec = float64(res.bytes) * 8 / res.elapsed.Seconds()
	return res, nil
}

// quietTailscale keeps tailscale's client code off the network beyond
// loopback and out of the logs: no log uploads to log.tailscale.io, no
// UPnP/NAT-PMP/PCP probes of the LAN gateway, and no "network down" pause
// on hosts without a default route (the knobs tailscale's integration tests
// set for their all-localhost tailscaleds).
func quietTailscale() {
	envknob.SetNoLogsNoSupport()
	envknob.Setenv("TS_DISABLE_PORTMAPPER", "1")
	envknob.Setenv("TS_ASSUME_NETWORK_UP_FOR_TEST", "1")
	logtail.Disable()
}

// startDERPAndSTUN does what tstest/integration.RunDERPAndSTUN does for
// tsnet's tests: a DERP server over TLS and a STUN server, both on ip, and the
// one-region DERP map pointing at them. It cannot call it or use
// derp/derpserver: derpserver needs modules (axiomhq/hyperloglog and others)
// that go.mod does not list, and tstest/integration would also register its
// test flags in every binary that links meshbench. So the DERP side is
// loopDERP, a minimal relay speaking the same protocol.
func startDERPAndSTUN(ip string) (derpMap *tailcfg.DERPMap, stop func(), err error) {
	d := newLoopDERP()

	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, nil, fmt.Errorf("derp listen: %w", err)
	}
	httpsrv := httptest.NewUnstartedServer(d)
	httpsrv.Listener.Close()
	httpsrv.Listener = ln
	httpsrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	httpsrv.Config.TLSNextProto = make(map[string]func(*http.Server, *tls.Conn, http.Handler))
	httpsrv.StartTLS()

	pc, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
	if err != nil {
		httpsrv.Close()
		d.Close()
		return nil, nil, fmt.Errorf("stun listen: %w", err)
	}
	stunDone := make(chan struct{})
	go serveSTUN(pc.(*net.UDPConn), stunDone)

	derpMap = &tailcfg.DERPMap{
		Regions: map[int]*tailcfg.DERPRegion{
			1: {
				RegionID:   1,
				RegionCode: "test",
				Nodes: []*tailcfg.DERPNode{{
					Name:             "t1",
					RegionID:         1,
					HostName:         ip,
					IPv4:             ip,
					IPv6:             "none",
					STUNPort:         pc.LocalAddr().(*net.UDPAddr).Port,
					DERPPort:         ln.Addr().(*net.TCPAddr).Port,
					InsecureForTests: true,
					STUNTestIP:       ip,
				}},
			},
		},
	}
	stop = func() {
		httpsrv.CloseClientConnections()
		httpsrv.Close()
		d.Close() // hijacked DERP connections are no longer the HTTP server's
		pc.Close()
		<-stunDone
	}
	return derpMap, stop, nil
}

// loopDERP is a minimal DERP relay for a handful of trusted local clients:
// the login handshake (server key, client info, server info), forwarding of
// send-packet frames as recv-packet frames, pings, and the probe endpoints
// netcheck uses. No meshing, rate limiting, dup handling or watchers.
type loopDERP struct {
	priv key.NodePrivate
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]bool
	clients map[key.NodePublic]*loopDERPClient
}

type loopDERPClient struct {
	nc net.Conn
	mu sync.Mutex // serialises frames on bw
	bw *bufio.Writer
}

func newLoopDERP() *loopDERP {
	return &loopDERP{
		priv:    key.NewNode(),
		conns:   make(map[net.Conn]bool),
		clients: make(map[key.NodePublic]*loopDERPClient),
	}
}

// Close closes every DERP connection and waits for their handlers.
func (d *loopDERP) Close() {
	d.mu.Lock()
	d.closed = true
	for nc := range d.conns {
		nc.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

func (d *loopDERP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/derp/probe", "/derp/latency-check":
		w.WriteHeader(http.StatusOK)
		return
	}
	if up := strings.ToLower(r.Header.Get("Upgrade")); up != "derp" {
		http.Error(w, "DERP requires connection upgrade", http.StatusUpgradeRequired)
		return
	}
	h, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return
	}
	nc, brw, err := h.Hijack()
	if err != nil {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		nc.Close()
		return
	}
	d.conns[nc] = true
	d.wg.Add(1)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.conns, nc)
		d.mu.Unlock()
		nc.Close()
		d.wg.Done()
	}()
	if r.Header.Get(derp.FastStartHeader) != "1" {
		//lint:ignore SA1019 the DERP upgrade header carries the untyped hex key, as tailscale's own server writes it
		hexKey := d.priv.Public().UntypedHexString()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\n"+
			"Upgrade: DERP\r\n"+
			"Connection: Upgrade\r\n"+
			"Derp-Version: %v\r\n"+
			"Derp-Public-Key: %s\r\n\r\n",
			derp.ProtocolVersion, hexKey)
	}
	d.serve(nc, brw)
}

func (d *loopDERP) serve(nc net.Conn, brw *bufio.ReadWriter) {
	br, bw := brw.Reader, brw.Writer

	nc.SetDeadline(time.Now().Add(10 * time.Second))
	greeting := d.priv.Public().AppendTo([]byte(derp.Magic))
	if derp.WriteFrame(bw, derp.FrameServerKey, greeting) != nil {
		return
	}
	fl, err := derp.ReadFrameTypeHeader(br, derp.FrameClientInfo)
	if err != nil || fl < derp.KeyLen+derp.NonceLen || fl > 256<<10 {
		return
	}
	var clientKey key.NodePublic
	if clientKey.ReadRawWithoutAllocating(br) != nil {
		return
	}
	box := make([]byte, fl-derp.KeyLen)
	if _, err := io.ReadFull(br, box); err != nil {
		return
	}
	if _, ok := d.priv.OpenFrom(clientKey, box); !ok {
		return
	}
	info, _ := json.Marshal(derp.ServerInfo{Version: derp.ProtocolVersion})
	if derp.WriteFrame(bw, derp.FrameServerInfo, d.priv.SealTo(clientKey, info)) != nil {
		return
	}
	nc.SetDeadline(time.Time{})

	c := &loopDERPClient{nc: nc, bw: bw}
	d.mu.Lock()
	d.clients[clientKey] = c
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.clients[clientKey] == c {
			delete(d.clients, clientKey)
		}
		d.mu.Unlock()
	}()

	buf := make([]byte, derp.MaxPacketSize+derp.KeyLen)
	for {
		t, fl, err := derp.ReadFrameHeader(br)
		if err != nil {
			return
		}
		switch {
		case t == derp.FrameSendPacket && fl >= derp.KeyLen && fl <= uint32(len(buf)):
			var dstKey key.NodePublic
			if dstKey.ReadRawWithoutAllocating(br) != nil {
				return
			}
			pkt := buf[:fl]
			if _, err := io.ReadFull(br, pkt[derp.KeyLen:]); err != nil {
				return
			}
			d.mu.Lock()
			dst := d.clients[dstKey]
			d.mu.Unlock()
			if dst == nil {
				gone := append(dstKey.AppendTo(nil), byte(derp.PeerGoneReasonNotHere))
				c.write(derp.FramePeerGone, gone)
				continue
			}
			// Version 2 framing: the packet follows the source's key.
			clientKey.AppendTo(pkt[:0])
			dst.write(derp.FrameRecvPacket, pkt)
		case t == derp.FramePing && fl == 8:
			var ping [8]byte
			if _, err := io.ReadFull(br, ping[:]); err != nil {
				return
			}
			c.write(derp.FramePong, ping[:])
		default:
			if _, err := br.Discard(int(fl)); err != nil {
				return
			}
		}
	}
}

// write sends one frame to c; a client that cannot take it within a few
// seconds is disconnected.
func (c *loopDERPClient) write(t derp.FrameType, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if derp.WriteFrame(c.bw, t, b) != nil {
		c.nc.Close()
	}
}

// serveSTUN answers STUN binding requests on pc until it is closed, as
// net/stun/stuntest does.
func serveSTUN(pc *net.UDPConn, done chan<- struct{}) {
	defer close(done)
	var buf [64 << 10]byte
	for {
		n, src, err := pc.ReadFromUDPAddrPort(buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pkt := buf[:n]
		if !stun.Is(pkt) {
			continue
		}
		txid, err := stun.ParseBindingRequest(pkt)
		if err != nil {
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		pc.WriteToUDPAddrPort(stun.Response(txid, src), src)
	}
}

// waitForHomeDERP blocks until s has picked a home DERP region and heard
// from it, as tsnet's waitForHomeDERPConnected does; until then the DERP
// server drops disco frames for s.
func waitForHomeDERP(ctx context.Context, s *tsnet.Server) error {
	h := s.Sys().HealthTracker.Get()
	ms := s.Sys().MagicSock.Get()
	for {
		if r := ms.GetLastNetcheckReport(ctx); r != nil &&
			r.PreferredDERP != 0 &&
			!h.GetDERPRegionReceivedTime(r.PreferredDERP).IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for home DERP: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitDirect pings recv from send over the tailnet until each node has a
// direct UDP address (ipnstate.PeerStatus.CurAddr, what tsnet's mustDirect
// checks) for the other. It returns send's address for recv.
func waitDirect(ctx context.Context, send, recv *tsnet.Server, recvIP netip.Addr, sendKey, recvKey key.NodePublic) (string, error) {
	lcSend, err := send.LocalClient()
	if err != nil {
		return "", err
	}
	lcRecv, err := recv.LocalClient()
	if err != nil {
		return "", err
	}
	curAddr := func() (sendView, recvView, relay string) {
		if st, err := lcSend.Status(ctx); err == nil {
			if ps := st.Peer[recvKey]; ps != nil {
				sendView, relay = ps.CurAddr, ps.Relay
			}
		}
		if st, err := lcRecv.Status(ctx); err == nil {
			if ps := st.Peer[sendKey]; ps != nil {
				recvView = ps.CurAddr
			}
		}
		return sendView, recvView, relay
	}
	var lastErr error
	for {
		// TSMP pings go through WireGuard: they make both ends handshake
		// and run magicsock's disco path discovery.
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, lastErr = lcSend.Ping(pingCtx, recvIP, tailcfg.PingTSMP)
		cancel()
		s, r, relay := curAddr()
		if s != "" && r != "" {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no direct UDP path between the tsnet nodes (sender sees %q, receiver sees %q, DERP %q, last ping error: %v): %w",
				s, r, relay, lastErr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
