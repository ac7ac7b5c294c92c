package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Log attribute names shared by the access log and the lines that
// refer to a request.
const (
	logRequestID = "request_id"
	logClient    = "client"
)

// HeaderRequestID carries a request's id: taken from the request when it
// is a sane token (a proxy's or a client's), else made up, and always
// sent back.
const HeaderRequestID = "X-Request-Id"

const ctxErrorCode = "moat.error_code" // the code apiError answered with

type requestIDKey struct{}

// requestID returns the id of the request ctx belongs to, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// newRequestID returns the caller's id if it is 1–64 characters of
// letters, digits, '-', '_', '.' or ':', else 16 random bytes in hex.
func newRequestID(given string) string {
	if saneID(given) {
		return given
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func saneID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.' || r == ':'
		if !ok {
			return false
		}
	}
	return true
}

// clientAddr is the address a request came from, through trusted
// proxies (ClientAddr), or the raw peer when that is not an IP address.
func (s *Server) clientAddr(r *http.Request) string {
	if a := s.ClientAddr(r); a.IsValid() {
		return a.String()
	}
	return r.RemoteAddr
}

// accessLog gives every request an id and, once it is answered, writes
// one log line and its metrics: the route pattern (never the raw path or
// query, which may carry sign-in codes), the client, status and latency.
// Refusals (401, 403, 429) are warnings naming the error code; the
// credential itself is never logged.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	id := newRequestID(c.GetHeader(HeaderRequestID))
	c.Header(HeaderRequestID, id)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), requestIDKey{}, id))
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)

	c.Next()

	elapsed := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.mx.observeHTTP(route, c.Request.Method, status, elapsed)
	attrs := []slog.Attr{
		slog.String(logRequestID, id), slog.String(logClient, s.clientAddr(c.Request)),
		slog.String("method", c.Request.Method), slog.String("route", route),
		slog.Int("status", status), slog.Duration("latency", elapsed), slog.Int("bytes", c.Writer.Size()),
	}
	if code := c.GetString(ctxErrorCode); code != "" {
		attrs = append(attrs, slog.String("error", code))
	}
	s.log.LogAttrs(context.Background(), accessLevel(route, status), "http request", attrs...)
}

// accessLevel is the level of a request's line: probes are debug,
// refusals warnings, server errors errors.
func accessLevel(route string, status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests:
		return slog.LevelWarn
	case route == "/healthz" || route == "/readyz" || route == "/metrics":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
