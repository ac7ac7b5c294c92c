package auditsink

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rsyslog is Debian's rsyslogd receiving syslog over TLS (its gnutls
// driver) on a port of its own, writing each message's severity,
// app-name, msgid and MSG as one line of a file.
type rsyslog struct {
	t         *testing.T
	bin, dir  string
	addr      string
	roots     *x509.CertPool
	cmd       *exec.Cmd
	done      chan error
	startings int
}

// startRsyslog starts rsyslogd, or skips the test saying why it cannot.
func startRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin = "/usr/sbin/rsyslogd"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("rsyslogd is not installed: apt-get install rsyslog rsyslog-gnutls (scripts/deps.sh does it as root)")
	}
	if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
		t.Skip("rsyslog's TLS driver is not installed: apt-get install rsyslog-gnutls (scripts/deps.sh does it as root)")
	}
	r := &rsyslog{t: t, bin: bin, dir: t.TempDir()}
	r.roots = writeCert(t, r.dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(r.addr)
	conf := fmt.Sprintf(`global(workDirectory=%[1]q maxMessageSize="64k"
  defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile=%[2]q
  defaultNetstreamDriverCertFile=%[3]q defaultNetstreamDriverKeyFile=%[4]q)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port=%[5]q)
template(name="fields" type="string" string="%%syslogseverity%% %%app-name%% %%msgid%% %%msg%%\n")
action(type="omfile" file=%[6]q template="fields")
`, r.dir, filepath.Join(r.dir, "ca.pem"), filepath.Join(r.dir, "cert.pem"), filepath.Join(r.dir, "key.pem"), port, r.out())
	if err := os.WriteFile(filepath.Join(r.dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rsyslog) out() string { return filepath.Join(r.dir, "out.log") }

// start runs rsyslogd in the foreground and waits until it accepts.
func (r *rsyslog) start() {
	r.t.Helper()
	r.startings++
	log, err := os.Create(filepath.Join(r.dir, fmt.Sprintf("rsyslogd-%d.log", r.startings)))
	if err != nil {
		r.t.Fatal(err)
	}
	defer log.Close()
	r.cmd = exec.Command(r.bin, "-n", "-f", filepath.Join(r.dir, "rsyslog.conf"), "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(r.cmd, r.done)
	waitFor(r.t, "rsyslogd to accept connections", func() bool {
		select {
		case err := <-r.done:
			b, _ := os.ReadFile(log.Name())
			r.t.Fatalf("rsyslogd exited: %v\n%s", err, b)
		default:
		}
		c, err := net.Dial("tcp", r.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// stop ends rsyslogd gracefully (SIGTERM), as a service restart does.
func (r *rsyslog) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// received is what rsyslog wrote: one line per message.
type received struct {
	severity, app, msgID string
	event                Event
}

func (r *rsyslog) received() []received {
	r.t.Helper()
	f, err := os.Open(r.out())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	var out []received
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) < 4 {
			continue // a line being written
		}
		var e Event
		if json.Unmarshal([]byte(strings.TrimSpace(f[3])), &e) != nil {
			continue
		}
		out = append(out, received{severity: f[0], app: f[1], msgID: f[2], event: e})
	}
	return out
}

func distinctIDs(rs []received) int {
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.event.ID] = true
	}
	return len(seen)
}

// TestSyslogRsyslogRestart: a real rsyslog takes RFC 5424 messages over
// TLS, octet-counted; it is restarted mid-stream while more records land,
// and in the end it holds every event, each first seen in order, with the
// refusals at severity warning, and no prompt.
func TestSyslogRsyslogRestart(t *testing.T) {
	rs := startRsyslog(t)
	s := openStore(t)
	addRecords(t, s, 0, 40)
	addActions(t, s, "policy.save", "auth.refused", "token.create")
	sink := &Syslog{Addr: rs.addr, TLS: &tls.Config{RootCAs: rs.roots, ServerName: "localhost"}, Hostname: "coord-1"}
	r := start(t, s, sink, Filter{Records: true, Admin: true}, func(c *Config) { c.Name = "syslog" })
	waitFor(t, "the first events", func() bool { return distinctIDs(rs.received()) >= 14 })
	rs.stop()
	addRecords(t, s, 40, 40)
	addActions(t, s, "device.revoke")
	waitFor(t, "failed deliveries while rsyslog is down", func() bool {
		return value(r.cfg.Metrics.errors.WithLabelValues("syslog")) >= 1
	})
	rs.start()
	waitFor(t, "everything", func() bool { return distinctIDs(rs.received()) == 84 })
	got := rs.received()
	var evs []Event
	for _, g := range got {
		evs = append(evs, g.event)
		want := "5"
		if refusal(g.event) {
			want = "4"
		}
		if g.app != "moat" || g.msgID != g.event.Stream || g.severity != want {
			t.Fatalf("message %s: severity %s app %s msgid %s, want %s moat %s", g.event.ID, g.severity, g.app, g.msgID, want, g.event.Stream)
		}
		if strings.Contains(string(g.event.Data), "prompt") {
			t.Fatalf("a prompt left: %s", g.event.Data)
		}
	}
	checkOrder(t, evs)
	t.Logf("%d messages for 84 events across a receiver restart", len(got))
}

// writeCert writes a CA and a server certificate for localhost and
// 127.0.0.1 to dir (ca.pem, cert.pem, key.pem) and returns the CA pool.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	for name, block := range map[string]*pem.Block{
		"ca.pem": {Type: "CERTIFICATE", Bytes: caDER}, "cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool
}
