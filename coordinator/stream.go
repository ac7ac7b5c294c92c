package coordinator

import (
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
			if !send(nil) {
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
