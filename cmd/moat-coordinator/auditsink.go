package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/auditsink"
	"github.com/moatmesh/moat/internal/cli"
)

// sinkSettings configure serve's audit sinks: a webhook and syslog.
type sinkSettings struct {
	webhook webhookSettings
	syslog  syslogSettings
}

func (s *sinkSettings) register(fs *pflag.FlagSet) {
	s.webhook.register(fs)
	s.syslog.register(fs)
}

func (s *sinkSettings) check(cmd *cobra.Command) error {
	if err := s.webhook.check(cmd); err != nil {
		return err
	}
	return s.syslog.check(cmd)
}

// sinks is the coordinator's AuditSinks for these settings.
func (s *sinkSettings) sinks() []coordinator.AuditSink {
	var out []coordinator.AuditSink
	if s.webhook.url != "" {
		out = append(out, coordinator.AuditSink{Name: "webhook", Sink: s.webhook.webhook(s.webhook.url),
			Filter: s.webhook.carry.filter(), Prompts: s.webhook.carry.prompts})
	}
	for _, also := range s.webhook.also {
		name, url, _ := strings.Cut(also, "=")
		out = append(out, coordinator.AuditSink{Name: "webhook-" + name, Sink: s.webhook.webhook(url),
			Filter: s.webhook.carry.filter(), Prompts: s.webhook.carry.prompts})
	}
	if s.syslog.addr != "" {
		sink, _ := s.syslog.sink() // refused by check when it cannot be made
		out = append(out, coordinator.AuditSink{Name: "syslog", Sink: sink,
			Filter: s.syslog.carry.filter(), Prompts: s.syslog.carry.prompts})
	}
	return out
}

// carrySettings are what one sink carries: --audit-<sink>-carry and
// --audit-<sink>-prompts.
type carrySettings struct {
	sink    string
	kinds   []string
	prompts bool
}

// What --audit-<sink>-carry may name.
var carryKinds = []string{"records", "refusals", "admin"}

func (c *carrySettings) register(fs *pflag.FlagSet, sink string) {
	c.sink = sink
	fs.StringSliceVar(&c.kinds, "audit-"+sink+"-carry", []string{"records", "admin"}, `what the `+sink+` sink carries (comma-separated): "records" (every audit record), "refusals" (denied requests and refused admin credentials), "admin" (the admin trail)`)
	fs.BoolVar(&c.prompts, "audit-"+sink+"-prompts", false, `let prompts that grants store ("audit": {"prompts": "full"}) leave with their records; otherwise they are removed`)
}

func (c *carrySettings) check(cmd *cobra.Command) error {
	for _, k := range c.kinds {
		if !slices.Contains(carryKinds, k) {
			return cli.Invalid(cmd, "audit-"+c.sink+"-carry", "%q: want records, refusals or admin", k)
		}
	}
	return nil
}

func (c *carrySettings) filter() auditsink.Filter {
	return auditsink.Filter{
		Records:  slices.Contains(c.kinds, "records"),
		Refusals: slices.Contains(c.kinds, "refusals"),
		Admin:    slices.Contains(c.kinds, "admin"),
	}
}

// webhookSettings configure serve's audit webhook sinks: the one at
// --audit-webhook-url and those --audit-webhook-also adds, all signed
// with the same secret and carrying the same.
type webhookSettings struct {
	url, secret, format, splunkToken string
	also                             []string // NAME=URL
	carry                            carrySettings
}

// webhookName is what NAME in --audit-webhook-also may be: it names the
// sink's cursors ("webhook-NAME") and metrics, so keep it stable.
var webhookName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

func (w *webhookSettings) register(fs *pflag.FlagSet) {
	fs.StringVar(&w.url, "audit-webhook-url", "", "push audit records and the admin trail to this https URL, signed (see docs/coordinator.md); empty: no webhook")
	fs.StringArrayVar(&w.also, "audit-webhook-also", nil, `another webhook, NAME=URL (repeat the flag for more; NAME: lowercase letters, digits and -), signed and carrying as --audit-webhook-url; NAME keys its cursor: keep it stable`)
	fs.StringVar(&w.secret, "audit-webhook-secret", "", "HMAC-SHA256 key signing each webhook request (at least 16 bytes; required with --audit-webhook-url)")
	cli.SecretFile(fs, "audit-webhook-secret")
	fs.StringVar(&w.format, "audit-webhook-format", auditsink.FormatJSON, `webhook body: "json" or "splunk-hec" (Splunk HTTP Event Collector)`)
	fs.StringVar(&w.splunkToken, "audit-webhook-splunk-token", "", `sent as "Authorization: Splunk TOKEN" (Splunk HEC); empty: no such header`)
	cli.SecretFile(fs, "audit-webhook-splunk-token")
	w.carry.register(fs, "webhook")
}

// check refuses a webhook serve cannot use.
func (w *webhookSettings) check(cmd *cobra.Command) error {
	if w.url == "" {
		if len(w.also) > 0 {
			return cli.Usagef("--audit-webhook-also needs --audit-webhook-url, whose settings it shares")
		}
		return nil
	}
	seen := map[string]bool{}
	for _, also := range w.also {
		name, url, ok := strings.Cut(also, "=")
		if !ok || !webhookName.MatchString(name) || seen[name] {
			return cli.Invalid(cmd, "audit-webhook-also", "%q: want NAME=URL with a NAME of its own (lowercase letters, digits and -)", also)
		}
		seen[name] = true
		if err := w.webhook(url).Check(); err != nil {
			return cli.Invalid(cmd, "audit-webhook-also", "%s: %v", name, err)
		}
	}
	if err := w.carry.check(cmd); err != nil {
		return err
	}
	if err := cli.Required(cmd, "audit-webhook-secret"); err != nil {
		return err
	}
	if err := w.webhook(w.url).Check(); err != nil {
		return cli.Invalid(cmd, "audit-webhook-url", "%v", err)
	}
	return nil
}

// webhook is the webhook sink to url with the shared settings.
func (w *webhookSettings) webhook(url string) *auditsink.Webhook {
	return &auditsink.Webhook{URL: url, Secret: []byte(w.secret), Format: w.format, SplunkToken: w.splunkToken}
}

// syslogSettings configure serve's syslog sink (RFC 5424 over TLS).
type syslogSettings struct {
	addr, caFile, serverName, certFile, keyFile string
	carry                                       carrySettings
}

func (s *syslogSettings) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.addr, "audit-syslog-addr", "", "push audit records and the admin trail to this syslog receiver, HOST:PORT, as RFC 5424 over TLS (port 6514 usually); empty: no syslog")
	fs.StringVar(&s.caFile, "audit-syslog-ca-file", "", "PEM certificates the syslog receiver's certificate must chain to; empty: the system's roots")
	fs.StringVar(&s.serverName, "audit-syslog-server-name", "", "name the syslog receiver's certificate must carry; empty: the host of --audit-syslog-addr")
	fs.StringVar(&s.certFile, "audit-syslog-cert-file", "", "client certificate (PEM) for receivers that authenticate senders; with --audit-syslog-key-file")
	fs.StringVar(&s.keyFile, "audit-syslog-key-file", "", "the client certificate's key (PEM)")
	s.carry.register(fs, "syslog")
}

// check refuses a syslog sink serve cannot use.
func (s *syslogSettings) check(cmd *cobra.Command) error {
	if s.addr == "" {
		return nil
	}
	if err := s.carry.check(cmd); err != nil {
		return err
	}
	if (s.certFile == "") != (s.keyFile == "") {
		return cli.Usagef("give both --audit-syslog-cert-file and --audit-syslog-key-file, or neither")
	}
	sink, err := s.sink()
	if err != nil {
		return cli.Usagef("%v", err)
	}
	if err := sink.Check(); err != nil {
		return cli.Invalid(cmd, "audit-syslog-addr", "%v", err)
	}
	return nil
}

// sink is the syslog sink, with its TLS settings read from their files.
func (s *syslogSettings) sink() (*auditsink.Syslog, error) {
	cfg := &tls.Config{ServerName: s.serverName, MinVersion: tls.VersionTLS12}
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, fmt.Errorf("--audit-syslog-ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--audit-syslog-ca-file %s: no PEM certificate in it", s.caFile)
		}
	}
	if s.certFile != "" {
		cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--audit-syslog-cert-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &auditsink.Syslog{Addr: s.addr, TLS: cfg}, nil
}
