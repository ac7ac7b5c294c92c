package llmapi

import (
	"encoding/json"
	"net/http"
)

// ErrorType is OpenAI's error "type" for an HTTP status.
func ErrorType(status int) string {
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

// OpenAIError is OpenAI's error shape.
type OpenAIError struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    string `json:"code"`
	} `json:"error"`
}

// OllamaError is Ollama's error shape.
type OllamaError struct {
	Error string `json:"error"`
}

// ErrorBody renders an error in f's shape: OpenAI's with msg, the type
// for status and code (a stable reason such as "model_not_found");
// Ollama's with msg alone.
func ErrorBody(f Family, status int, code, msg string) []byte {
	var v any
	if f == Ollama {
		v = OllamaError{msg}
	} else {
		var e OpenAIError
		e.Error.Message, e.Error.Type, e.Error.Code = msg, ErrorType(status), code
		v = e
	}
	b, _ := json.Marshal(v)
	return b
}

// WriteError answers with an error in f's shape (see ErrorBody). Headers
// already set on w, such as Retry-After or Allow, go with it.
func WriteError(w http.ResponseWriter, f Family, status int, code, msg string) {
	WriteJSON(w, status, append(ErrorBody(f, status, code, msg), '\n'))
}

// WriteJSON answers with a JSON body.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(body)
}
