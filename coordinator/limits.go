package coordinator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Caps on what one caller may hold at once. Rate tables (ratelimit.go)
// bound how often; these bound how many at the same time.

// counter counts holders per key; acquire refuses beyond max.
type counter struct {
	max int
	mu  struct {
		sync.Mutex
		n map[string]int
	}
}

func newCounter(max int) *counter {
	c := &counter{max: max}
	c.mu.n = map[string]int{}
	return c
}

// acquire takes one of key's max places and returns its release, or nil
// when all are taken. A max below 1 never refuses.
func (c *counter) acquire(key string) (release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.mu.n[key] >= c.max {
		return nil
	}
	c.mu.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.mu.n[key]--; c.mu.n[key] <= 0 {
				delete(c.mu.n, key)
			}
		})
	}
}

// inFlightPerClient returns middleware that caps the requests one client
// address has in flight at once (Config.MaxConnsPerClient). Behind a
// trusted proxy every client shares the proxy's connections, so this is
// the cap that holds there; ServeListener caps direct connections.
func (s *Server) inFlightPerClient() gin.HandlerFunc {
	held := newCounter(s.cfg.MaxConnsPerClient)
	return func(c *gin.Context) {
		release := held.acquire(s.clientKeyOf(c.Request))
		if release == nil {
			s.tooMany(c, "too_many_connections", "too many requests from your address at once; close some and try again")
			return
		}
		defer release()
		c.Next()
	}
}

// maxPollsPerLogin is how many polls of one login may wait at once; a
// device needs one.
const maxPollsPerLogin = 2

// pollsPerLogin returns middleware that lets at most maxPollsPerLogin
// polls of one login (POST /api/v1/login/poll) wait at once and refuses
// more at once. It reads the poll secret from the body and leaves the
// body for the handler.
func (s *Server) pollsPerLogin() gin.HandlerFunc {
	polls := newCounter(maxPollsPerLogin)
	return func(c *gin.Context) {
		body, err := io.ReadAll(io.LimitReader(c.Request.Body, limitSmall+1))
		if err != nil {
			apiError(c, http.StatusBadRequest, "bad_request", "request body: "+err.Error())
			return
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Poll string `json:"poll"`
		}
		_ = json.Unmarshal(body, &req) // the handler answers a bad body
		release := polls.acquire(string(hashSecret(req.Poll)))
		if release == nil {
			s.tooMany(c, "too_many_polls", "this login is already being polled; wait for that poll to answer")
			return
		}
		defer release()
		c.Next()
	}
}

// idpFormLimit returns middleware that rate-limits posts to the embedded
// provider (password, code and setup forms) per client address; pages
// pass. The coordinator's own token exchange with the provider is
// in-process and does not come this way.
func (s *Server) idpFormLimit() gin.HandlerFunc {
	limit := s.perClient(newRateTable(time.Second, 30))
	return func(c *gin.Context) {
		if c.Request.Method == http.MethodPost {
			limit(c)
			return
		}
		c.Next()
	}
}
