package guard

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/node/screen"
)

// Refusal reasons: the "reason" label of the refusals metric, the code in
// OpenAI-shaped errors and the Reason of audit records.
const (
	reasonUnknownCaller = "unknown_caller"
	reasonExpired       = "key_expired"
	reasonNotGranted    = "model_not_granted"
	reasonMFA           = "mfa_required"
	reasonNotServed     = "model_not_served"
	reasonNotListed     = "model_not_found"
	reasonWrongAPI      = "wrong_api_family"
	reasonBadRequest    = "invalid_request"
	reasonTooLarge      = "body_too_large"
	reasonBodyTimeout   = "body_timeout"
	reasonBodyReads     = "too_many_bodies"
	reasonRPM           = "rpm_exceeded"
	reasonTPM           = "tpm_exceeded"
	reasonConcurrency   = "concurrency_exceeded"
	reasonDay           = "tokens_per_day_exceeded"
	reasonLeaseDown     = "quota_unreachable"
	reasonBudget        = "budget_exceeded"
	reasonScreen        = "blocked_by_guard"
	reasonNoNetmap      = "no_netmap"
	reasonNotFound      = "not_found"
	reasonMethod        = "method_not_allowed"
	reasonUpstream      = "upstream_unavailable"
	reasonUpstreamSlow  = "upstream_timeout"
	reasonInternal      = "internal_error" // a bug: the request's handler panicked
)

// writeError sends an error answer in f's shape.
func writeError(w http.ResponseWriter, f llmapi.Family, status int, code, msg string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	llmapi.WriteError(w, f, status, code, msg)
}

// screenCode is the error code of a screening refusal: blocked_by_guard
// and the rule, "blocked_by_guard:aws-access-key", so that a client can
// tell what to remove. The metric label and the audit reason stay
// reasonScreen.
func screenCode(err error) string {
	var be *screen.BlockError
	if errors.As(err, &be) && be.Rule != "" {
		return reasonScreen + ":" + be.Rule
	}
	return reasonScreen
}

// headerRedacted tells the client that the guard redacted content, and
// which rules did: "prompt=aws-access-key,email; answer=jwt". It is not
// sent for streamed answers, whose headers leave before their text; their
// markers ([REDACTED:rule]) and the audit record say it.
const headerRedacted = "X-Moat-Redacted"

// setRedacted sets headerRedacted from the redactions noted so far.
func setRedacted(h http.Header, sc *ScreenCall) {
	if sc == nil {
		return
	}
	var parts []string
	for _, side := range [...]struct{ where, name string }{{"input", "prompt"}, {"output", "answer"}} {
		var rules []string
		for _, f := range sc.findings {
			if f.Action == "redact" && f.Where == side.where {
				rules = append(rules, f.Rule)
			}
		}
		if len(rules) > 0 {
			parts = append(parts, side.name+"="+strings.Join(rules, ","))
		}
	}
	if len(parts) > 0 {
		h.Set(headerRedacted, strings.Join(parts, "; "))
	}
}
