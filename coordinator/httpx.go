package coordinator

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/mesh/wire"
)

// Body limits per kind of endpoint.
const (
	limitSmall  = 64 << 10 // logins, enrollments, admin actions
	limitPolicy = 1 << 20  // a policy document (policy.MaxSize) as a JSON string
	limitAudit  = 8 << 20  // one batch of audit records
)

// apiError answers with the API's error shape and aborts the handler
// chain. msg says what happened and what to do; code is stable for
// programs.
func apiError(c *gin.Context, status int, code, msg string) {
	c.Set(ctxErrorCode, code) // for the access log
	c.AbortWithStatusJSON(status, wire.Error{Message: msg, Code: code})
}

// decode reads the request body as JSON of at most limit bytes into v,
// answering 400/413 itself when it cannot. It reports whether to go on.
func decode(c *gin.Context, limit int64, v any) bool {
	if ct := c.GetHeader("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		apiError(c, http.StatusUnsupportedMediaType, "bad_content_type", "send the body as application/json")
		return false
	}
	if err := wire.Decode(c.Request.Body, limit, v); err != nil {
		if errors.Is(err, wire.ErrTooLarge) {
			apiError(c, http.StatusRequestEntityTooLarge, "too_large", err.Error())
			return false
		}
		apiError(c, http.StatusBadRequest, "bad_request", "request body: "+err.Error())
		return false
	}
	return true
}

// bearer returns the bearer token of the request, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

// securityHeaders are set on every response; HSTS on those served over
// TLS by the coordinator itself (behind a TLS proxy, the proxy sets it).
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	if c.Request.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	c.Next()
}
