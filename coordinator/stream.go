package coordinator

import (
	"crypto/hmac"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// Netmap stream timing.
const (
	heartbeat    = 25 * time.Second // an empty line, so proxies keep the stream open
	writeTimeout = 15 * time.Second // a client that stops reading is dropped
)

// netmapStream holds one device's netmap stream: GET /api/v1/netmap
// (NDJSON, one netmap per line, empty lines as heartbeats). With
// ?seq=N, the current netmap is not sent again when its Seq is N (a
// client resuming after a reconnect). The stream ends when the device
// leaves the mesh (revoked, expired, disabled); its next request then
// says why.
func (s *Server) netmapStream(c *gin.Context) {
	d := device(c)
	sub, cancel := s.hub.subscribe(d.ID)
	defer cancel()
	since, _ := strconv.ParseUint(c.Query("seq"), 10, 64)
	rc := http.NewResponseController(c.Writer)
	c.Header("Content-Type", "application/x-ndjson")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	send := func(e *hubEntry) bool {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		var err error
		if e == nil {
			_, err = c.Writer.Write([]byte("\n"))
		} else {
			err = e.writeTo(c.Writer)
		}
		return err == nil && rc.Flush() == nil
	}
	e := s.hub.current(d.ID)
	if e == nil {
		// Signed in a moment ago: the first recompute is on its way.
		s.changed()
	} else if e.seq != since && !send(e) {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	s.touch(d.ID)
	for {
		select {
		case <-c.Request.Context().Done():
			return
		case <-tick.C:
			// The credential this stream was opened with must still be the
			// device's: a new sign-in or a revocation ends old streams.
			if !s.stillValid(c, d.ID, hashSecret(bearer(c.Request))) || !send(nil) {
				return
			}
			s.touch(d.ID)
		case <-sub.wake:
			e := s.hub.current(d.ID)
			if e == nil || !send(e) {
				return
			}
		}
	}
}

// touch records that a device was seen, without failing the caller.
func (s *Server) touch(id string) {
	ctx, cancel := contextWithTimeout(2 * time.Second)
	defer cancel()
	if err := s.store.TouchDevice(ctx, id, s.cfg.Now()); err != nil {
		s.log.Debug("touch device", "device", id, "err", err)
	}
}

// stillValid reports whether device id still exists, is live, and still
// has the credential whose hash is credHash.
func (s *Server) stillValid(c *gin.Context, id string, credHash []byte) bool {
	d, err := s.store.Device(c.Request.Context(), id)
	return err == nil && hmac.Equal(d.CredHash, credHash) && s.deadDevice(c, d) == ""
}
