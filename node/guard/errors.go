package guard

import (
	"net/http"
	"strconv"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
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
	reasonScreen        = "blocked_by_guard"
	reasonNoNetmap      = "no_netmap"
	reasonNotFound      = "not_found"
	reasonMethod        = "method_not_allowed"
	reasonUpstream      = "upstream_unavailable"
	reasonUpstreamSlow  = "upstream_timeout"
)

// writeError sends an error answer in f's shape.
func writeError(w http.ResponseWriter, f llmapi.Family, status int, code, msg string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	llmapi.WriteError(w, f, status, code, msg)
}
