package main

import (
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/auditsink"
	"github.com/moatmesh/moat/internal/cli"
)

// webhookSettings configure serve's audit webhook sink.
type webhookSettings struct {
	url, secret, format, splunkToken string
	carry                            []string
	prompts                          bool
}

// What --audit-webhook-carry may name.
var carryKinds = []string{"records", "refusals", "admin"}

func (w *webhookSettings) register(fs *pflag.FlagSet) {
	fs.StringVar(&w.url, "audit-webhook-url", "", "push audit records and the admin trail to this https URL, signed (see docs/coordinator.md); empty: no webhook")
	fs.StringVar(&w.secret, "audit-webhook-secret", "", "HMAC-SHA256 key signing each webhook request (at least 16 bytes; required with --audit-webhook-url)")
	cli.SecretFile(fs, "audit-webhook-secret")
	fs.StringVar(&w.format, "audit-webhook-format", auditsink.FormatJSON, `webhook body: "json" or "splunk-hec" (Splunk HTTP Event Collector)`)
	fs.StringVar(&w.splunkToken, "audit-webhook-splunk-token", "", `sent as "Authorization: Splunk TOKEN" (Splunk HEC); empty: no such header`)
	cli.SecretFile(fs, "audit-webhook-splunk-token")
	fs.StringSliceVar(&w.carry, "audit-webhook-carry", []string{"records", "admin"}, `what the webhook carries (comma-separated): "records" (every audit record), "refusals" (denied requests and refused admin credentials), "admin" (the admin trail)`)
	fs.BoolVar(&w.prompts, "audit-webhook-prompts", false, `let prompts that grants store ("audit": {"prompts": "full"}) leave with their records; otherwise they are removed`)
}

// check refuses a webhook serve cannot use.
func (w *webhookSettings) check(cmd *cobra.Command) error {
	if w.url == "" {
		return nil
	}
	for _, k := range w.carry {
		if !slices.Contains(carryKinds, k) {
			return cli.Invalid(cmd, "audit-webhook-carry", "%q: want records, refusals or admin", k)
		}
	}
	if err := cli.Required(cmd, "audit-webhook-secret"); err != nil {
		return err
	}
	if err := w.webhook().Check(); err != nil {
		return cli.Invalid(cmd, "audit-webhook-url", "%v", err)
	}
	return nil
}

func (w *webhookSettings) webhook() *auditsink.Webhook {
	return &auditsink.Webhook{URL: w.url, Secret: []byte(w.secret), Format: w.format, SplunkToken: w.splunkToken}
}

// sinks is the coordinator's AuditSinks for these settings.
func (w *webhookSettings) sinks() []coordinator.AuditSink {
	if w.url == "" {
		return nil
	}
	f := auditsink.Filter{
		Records:  slices.Contains(w.carry, "records"),
		Refusals: slices.Contains(w.carry, "refusals"),
		Admin:    slices.Contains(w.carry, "admin"),
	}
	return []coordinator.AuditSink{{Name: "webhook", Sink: w.webhook(), Filter: f, Prompts: w.prompts}}
}
