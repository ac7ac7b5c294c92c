package guard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unsafe"

	"github.com/moatmesh/moat/node/screen"
)

// reasonAbuse refuses a caller the abuse tracker throttles.
const reasonAbuse = "abuse_throttled"

// maxAbusePrompt bounds the prompt bytes the tracker hashes per request.
const maxAbusePrompt = 16 << 10

// newTracker returns the abuse tracker: its events go to the metrics and
// the log (and to cfg.OnEvent), and onto the audit record of the request
// that raised them.
func (g *Guard) newTracker(cfg screen.AbuseConfig) *screen.Tracker {
	if cfg.Now == nil {
		cfg.Now = g.cfg.Now
	}
	user := cfg.OnEvent
	cfg.OnEvent = func(ev screen.AbuseEvent) {
		g.metrics.abuse.WithLabelValues(ev.Kind.String()).Inc()
		g.cfg.Logger.Warn("abuse event", "identity", ev.Identity, "kind", ev.Kind.String(), "count", ev.Count, "baseline", ev.Baseline)
		if user != nil {
			user(ev)
		}
	}
	return screen.NewTracker(cfg)
}

// observeAbuse feeds the request to the tracker; false when the caller is
// throttled (and the request refused).
func (c *call) observeAbuse() bool {
	t := c.g.abuse
	if t == nil {
		return true
	}
	p := c.body[:min(len(c.body), maxAbusePrompt)]
	d := t.Observe(screen.Usage{
		Identity:    c.who.limitKey,
		Prompt:      unsafe.String(unsafe.SliceData(p), len(p)), // hashed, not kept
		Logprobs:    c.req.Logprobs,
		TopLogprobs: c.req.topLogprobs(),
	})
	for _, ev := range d.Events {
		c.abuse = append(c.abuse, ev.Kind.String())
	}
	if d.Throttle {
		retry := d.Until.Sub(c.start)
		c.refuse(http.StatusTooManyRequests, reasonAbuse, fmt.Sprintf("%s sent requests in a pattern this node treats as abuse (%s) and is throttled; retry in %s, or ask an admin", c.who.who(), c.abuseWhat(), retry.Round(time.Second)+time.Second), retry)
		return false
	}
	return true
}

func (c *call) abuseWhat() string {
	if len(c.abuse) == 0 {
		return "earlier"
	}
	return c.abuse[0]
}

// topLogprobs returns the request's top_logprobs (0 when absent or not a
// number).
func (r *request) topLogprobs() int {
	raw, ok := r.fields["top_logprobs"]
	if !ok {
		return 0
	}
	var n int
	json.Unmarshal(raw, &n)
	return n
}
