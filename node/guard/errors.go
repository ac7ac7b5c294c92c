package guard

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Refusal reasons: the "reason" label of the refusals metric, the code in
// OpenAI-shaped errors and the Reason of audit records.
const (
	reasonUnknownCaller = "unknown_caller"
	reasonExpired       = "key_expired"
	reasonNotGranted    = "model_not_granted"
	reasonMFA           = "mfa_required"
	reasonNotServed     = "model_not_served"
	reasonWrongAPI      = "wrong_api_family"
	reasonBadRequest    = "invalid_request"
	reasonTooLarge      = "body_too_large"
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

// errType maps a status to OpenAI's error "type".
func errType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusServiceUnavailable:
		return "server_error"
	}
	return "invalid_request_error"
}

type openAIError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
	} `json:"error"`
}

type ollamaError struct {
	Error string `json:"error"`
}

// errorBody renders msg in f's error shape.
func errorBody(f family, status int, code, msg string) []byte {
	var v any
	if f == ollama {
		v = ollamaError{msg}
	} else {
		var e openAIError
		e.Error.Message, e.Error.Type, e.Error.Code = msg, errType(status), code
		v = e
	}
	b, _ := json.Marshal(v)
	return b
}

// writeError sends an error answer in f's shape.
func writeError(w http.ResponseWriter, f family, status int, code, msg string, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(status)
	w.Write(append(errorBody(f, status, code, msg), '\n'))
}
