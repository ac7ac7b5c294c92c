package coordinator

import (
	"context"
	"sync"

	"github.com/gin-gonic/gin"
)

// drainer ends long-lived streams when the server shuts down. Its zero
// value is ready.
type drainer struct {
	once   sync.Once
	ctx    context.Context // done once Drain was called
	cancel context.CancelFunc
}

func (d *drainer) init() {
	d.once.Do(func() { d.ctx, d.cancel = context.WithCancel(context.Background()) })
}

// done returns a context that ends when draining starts.
func (d *drainer) done() context.Context { d.init(); return d.ctx }

// Drain ends every open netmap stream cleanly (the response completes,
// and clients reconnect, to another replica or to this one restarted)
// while other requests go on. Call it as http.Server.Shutdown starts,
// which waits for what is in flight; streams never finish on their own.
func (s *Server) Drain() {
	s.drain.init()
	s.drain.cancel()
}

// InFlight returns the number of requests being answered.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// endOnDrain ends the request's context when Drain is called, so that a
// stream handler returns.
func (s *Server) endOnDrain(c *gin.Context) {
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	stop := context.AfterFunc(s.drain.done(), cancel)
	defer stop()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}
