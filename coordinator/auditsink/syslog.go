package auditsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Syslog sends events as RFC 5424 messages over TLS (RFC 5425), each
// framed by its octet count (RFC 6587 §3.4.1): "LEN SP MSG".
//
// A message is "<PRI>1 TIMESTAMP HOSTNAME moat - MSGID - MSG": facility
// log audit (13), severity warning for refusals (a record not allowed,
// a refused admin credential) and notice otherwise; MSGID is the stream
// ("records" or "admin"); MSG is the Event as JSON.
//
// Syslog has no acknowledgements, so a batch counts as delivered once
// written to the connection. Before each batch the connection is checked
// for a close by the receiver (a restart), and after it for a reset, so
// a receiver that restarts loses nothing it did not lose itself; a batch
// that fails is sent again, whole, on a new connection.
type Syslog struct {
	// Addr is the receiver's host:port (6514 is syslog over TLS).
	Addr string
	// TLS configures the connection; nil means the system roots and
	// Addr's host as the server name.
	TLS *tls.Config
	// Hostname is the HOSTNAME field; "" means this machine's name.
	Hostname string
	// Settle is how long, after writing a batch, the connection is
	// watched for a reset; 0 means 50 ms.
	Settle time.Duration

	mu   sync.Mutex
	conn *tls.Conn
}

// Syslog facility and severities (RFC 5424 §6.2.1).
const (
	facilityLogAudit = 13
	severityWarning  = 4
	severityNotice   = 5
	syslogApp        = "moat"
)

// Check reports what is wrong with s's settings.
func (s *Syslog) Check() error {
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		return fmt.Errorf("syslog address %q: want host:port, e.g. siem.example.com:6514", s.Addr)
	}
	return nil
}

// Deliver implements Sink.
func (s *Syslog) Deliver(ctx context.Context, events []Event) error {
	var b bytes.Buffer
	host := s.hostname()
	for _, e := range events {
		msg, err := syslogMessage(e, host)
		if err != nil {
			return err
		}
		b.WriteString(strconv.Itoa(len(msg)))
		b.WriteByte(' ')
		b.Write(msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.send(ctx, b.Bytes())
	if err != nil {
		s.closeLocked()
	}
	return err
}

// send writes batch on the connection, dialling when there is none or
// the receiver has closed it.
func (s *Syslog) send(ctx context.Context, batch []byte) error {
	if s.conn != nil && peerGone(s.conn, time.Millisecond) != nil {
		s.closeLocked()
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(batch); err != nil {
		return fmt.Errorf("syslog write: %w", err)
	}
	settle := s.Settle
	if settle <= 0 {
		settle = 50 * time.Millisecond
	}
	if err := peerGone(s.conn, settle); err != nil {
		return fmt.Errorf("syslog receiver went away during the batch: %w", err)
	}
	return nil
}

func (s *Syslog) dial(ctx context.Context) error {
	cfg := s.TLS
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(s.Addr)
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 30 * time.Second}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("syslog dial %s: %w", s.Addr, err)
	}
	s.conn = c.(*tls.Conn)
	return nil
}

// peerGone reads from c for up to wait: a receiver sends nothing, so
// only a timeout means the connection is still open.
func peerGone(c *tls.Conn, wait time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	var one [1]byte
	_, err := c.Read(one[:])
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return nil
	}
	if err == nil {
		return nil // the receiver said something; syslog receivers do not
	}
	return err
}

// Close implements io.Closer: the Runner closes the connection when it
// stops.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	return nil
}

func (s *Syslog) closeLocked() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

func (s *Syslog) hostname() string {
	if s.Hostname != "" {
		return s.Hostname
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "-"
}

// syslogMessage is e as one RFC 5424 message.
func syslogMessage(e Event, host string) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	sev := severityNotice
	if refusal(e) {
		sev = severityWarning
	}
	ts := "-"
	if !e.Time.IsZero() {
		ts = e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	}
	msg := fmt.Appendf(nil, "<%d>1 %s %s %s - %s - ", facilityLogAudit*8+sev, ts, printable(host, 255), syslogApp, e.Stream)
	return append(msg, body...), nil
}

// refusal reports whether e is a refused request or credential.
func refusal(e Event) bool {
	var d struct {
		Decision string `json:"decision"`
		Action   string `json:"action"`
	}
	_ = json.Unmarshal(e.Data, &d)
	if e.Stream == StreamAdmin {
		return d.Action == refusedAction
	}
	return d.Decision != "" && d.Decision != "allow"
}

// printable is s cut to max bytes of printable US-ASCII without spaces
// (RFC 5424 header fields), "-" when nothing is left.
func printable(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if c := s[i]; c > 32 && c < 127 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}
