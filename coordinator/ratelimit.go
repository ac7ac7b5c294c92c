package coordinator

import (
	"container/list"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// rateTable holds one token bucket per key (a client address, an
// account), at most rateTableCap of them: when full, the least recently
// used bucket is forgotten. A flood of new keys therefore evicts only
// keys that have gone quiet, never the busy key the flood hides.
type rateTable struct {
	every time.Duration
	burst int

	mu struct {
		sync.Mutex
		byKey map[string]*list.Element // → *rateEntry
		order list.List                // front: most recently used
	}
}

type rateEntry struct {
	key string
	lim *rate.Limiter
}

const rateTableCap = 10000

func newRateTable(every time.Duration, burst int) *rateTable {
	t := &rateTable{every: every, burst: burst}
	t.mu.byKey = map[string]*list.Element{}
	return t
}

// allow takes a token from key's bucket at now and reports whether there
// was one. now is the server's clock, so that tests that move the clock
// refill buckets as time would, and wall time does not decide a test.
func (t *rateTable) allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.mu.byKey[key]; ok {
		t.mu.order.MoveToFront(el)
		return el.Value.(*rateEntry).lim.AllowN(now, 1)
	}
	if t.mu.order.Len() >= rateTableCap {
		oldest := t.mu.order.Back()
		t.mu.order.Remove(oldest)
		delete(t.mu.byKey, oldest.Value.(*rateEntry).key)
	}
	e := &rateEntry{key: key, lim: rate.NewLimiter(rate.Every(t.every), t.burst)}
	t.mu.byKey[key] = t.mu.order.PushFront(e)
	return e.lim.AllowN(now, 1)
}

// perClient returns middleware that answers 429 when the caller's address
// (ClientAddr, IPv6 by /64) is over its rate in t.
func (s *Server) perClient(t *rateTable) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !t.allow(s.clientKeyOf(c.Request), s.cfg.Now()) {
			s.tooMany(c, "rate_limited", "too many requests from your address; wait a little and try again")
			return
		}
		c.Next()
	}
}

// signInLimit returns the per-address limit on sign-in requests
// (Config.SignInRate a minute, as many at once), or no limit.
func (s *Server) signInLimit() gin.HandlerFunc {
	if s.cfg.SignInRate < 0 {
		return func(c *gin.Context) { c.Next() }
	}
	return s.perClient(newRateTable(time.Minute/time.Duration(s.cfg.SignInRate), s.cfg.SignInRate))
}

// tooMany answers 429 with code (also the refusal's metric label) and
// msg, asking the caller to come back in 10 s.
func (s *Server) tooMany(c *gin.Context, code, msg string) {
	s.refuse(code)
	c.Header("Retry-After", "10")
	apiError(c, http.StatusTooManyRequests, code, msg)
}
