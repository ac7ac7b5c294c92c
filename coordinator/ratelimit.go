package coordinator

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// ipLimiter rate-limits a route per client address (token bucket), with a
// bounded table so a flood of addresses cannot grow it without limit.
type ipLimiter struct {
	every time.Duration
	burst int
	mu    sync.Mutex
	table map[string]*rate.Limiter
}

const ipLimiterCap = 10000

func newIPLimiter(every time.Duration, burst int) *ipLimiter {
	return &ipLimiter{every: every, burst: burst, table: map[string]*rate.Limiter{}}
}

func (l *ipLimiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.table[ip]
	if lim == nil {
		if len(l.table) >= ipLimiterCap {
			clear(l.table) // crude but bounded: everyone starts over
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.table[ip] = lim
	}
	return lim.Allow()
}

// middleware answers 429 when the caller's address is over its rate.
func (l *ipLimiter) middleware(s *Server) gin.HandlerFunc {
	return func(c *gin.Context) {
		ip, _, err := net.SplitHostPort(c.Request.RemoteAddr)
		if err != nil {
			ip = c.Request.RemoteAddr
		}
		if !l.allow(ip) {
			s.refuse("rate_limited")
			c.Header("Retry-After", "10")
			apiError(c, http.StatusTooManyRequests, "rate_limited", "too many requests from your address; wait a little and try again")
			return
		}
		c.Next()
	}
}
