package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

// maxSoftwareLen bounds the software a member reports (its User-Agent).
const maxSoftwareLen = 64

// memberVersion refuses a member whose protocol (wire.ProtocolHeader) is
// older than this coordinator talks to, naming both sides' software, so
// that the person or operator knows which side to upgrade. Members from
// before the header send none: they speak protocol 1.
func (s *Server) memberVersion(c *gin.Context) {
	v := c.GetHeader(wire.ProtocolHeader)
	if v == "" {
		c.Next()
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		apiError(c, http.StatusBadRequest, "bad_request", wire.ProtocolHeader+": want the member's protocol version, a number")
		return
	}
	if n < wire.MinVersion {
		member := software(c.Request)
		if member == "" {
			member = "unknown software"
		}
		apiError(c, http.StatusUpgradeRequired, wire.CodeVersionTooOld, fmt.Sprintf(
			"this member (%s) speaks moat protocol %d; this coordinator (moat-coordinator %s) needs protocol %d or later: upgrade the member",
			member, n, s.cfg.Version, wire.MinVersion))
		return
	}
	c.Next()
}

// software is what a member says it runs (its User-Agent,
// "moat-node/v1.2.3"), or "" when it sends nothing usable: too long, or
// characters outside letters, digits and . _ - + / ( ) and space.
func software(r *http.Request) string {
	ua := r.UserAgent()
	if ua == "" || len(ua) > maxSoftwareLen {
		return ""
	}
	for _, ch := range ua {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == '.' || ch == '_' || ch == '-' || ch == '+' || ch == '/' || ch == '(' || ch == ')' || ch == ' ':
		default:
			return ""
		}
	}
	return ua
}

// noteSoftware records what d runs when it changed. Only requests that
// carry the protocol header name the member's software (its other calls,
// audit shipping among them, may carry a library's User-Agent). A failure
// is only logged: the request goes on.
func (s *Server) noteSoftware(ctx context.Context, d *store.Device, r *http.Request) {
	if r.Header.Get(wire.ProtocolHeader) == "" {
		return
	}
	sw := software(r)
	if sw == "" || sw == d.Software {
		return
	}
	if err := s.store.SetDeviceSoftware(ctx, d.ID, sw); err != nil {
		s.log.Warn("record member software", "device", d.ID, "err", err)
		return
	}
	d.Software = sw
}
