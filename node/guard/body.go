package guard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/moatmesh/moat/node/audit"
)

// A request body is where a caller can make the guard wait and hold
// memory, so reading one is bounded: the caller first takes an admission
// slot (reserve), then waits its turn among its own bodies being read
// (Config.MaxBodyReadsPerCaller), the body must arrive within
// Config.BodyTimeout of the headers (a read deadline that stays until the
// body is in), and the buffer grows with the bytes that arrived, not with
// the length claimed.
// A request answered before its body was read to the end closes its
// connection: net/http would otherwise read the rest before the next
// request, with nothing bounding how long that takes.

// armBody sets the body's read deadline; a request without a body has
// nothing to read.
func (c *call) armBody() {
	if c.r.ContentLength == 0 {
		c.bodyDone = true
		return
	}
	// Real time, not Config.Now: the deadline is the connection's.
	c.bodyDue = time.Now().Add(c.g.cfg.BodyTimeout)
	setReadDeadline(c.w, c.bodyDue)
}

// closeUnread makes the answer to r the connection's last and stops
// reading from it, for a request whose body may not have been read to
// its end.
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	setReadDeadline(w, time.Now())
}

// setReadDeadline sets the read deadline of w's connection. It is
// http.ResponseController's, without its allocation for a writer that
// has the method itself; a writer that neither has it nor wraps another
// (a recorder off a real server) has no connection to bound.
func setReadDeadline(w http.ResponseWriter, t time.Time) {
	switch d := w.(type) {
	case interface{ SetReadDeadline(time.Time) error }:
		d.SetReadDeadline(t)
	case interface{ Unwrap() http.ResponseWriter }:
		http.NewResponseController(w).SetReadDeadline(t)
	}
}

// reserve takes the caller's admission slot before the body is read: a
// caller whose grants' limits all refuse now is refused without the
// guard reading (and paying for) its body, and so is one that no model
// here is granted to, unless its body is small: that one is read to name
// the model in the refusal and the audit record.
func (c *call) reserve() bool {
	if len(c.who.grants) == 0 {
		if n := c.r.ContentLength; n > 0 && n <= maxPrealloc {
			return true
		}
		c.refuse(http.StatusForbidden, reasonNotGranted, fmt.Sprintf("no model served on node %s is granted to %s; ask an admin", c.g.cfg.NodeName, c.who.who()), 0)
		return false
	}
	if r := c.g.limits.hold(c.who.limitKey, c.who.grants, c.start); r != nil {
		c.refuseLimit(r)
		return false
	}
	c.held = true
	return true
}

// readBody reads and parses the request body within the size and time
// limits.
func (c *call) readBody() bool {
	if !c.bodyDone && !c.g.reads.acquire(c.who.limitKey, c.bodyDue) {
		c.refuse(http.StatusTooManyRequests, reasonBodyReads, fmt.Sprintf("%s is sending %d other request bodies to this node that did not arrive within %s; retry when they have", c.who.who(), c.g.cfg.MaxBodyReadsPerCaller, c.g.cfg.BodyTimeout), time.Second)
		return false
	}
	body, err := readAllSized(http.MaxBytesReader(c.w, c.r.Body, c.g.cfg.MaxBodyBytes), c.r.ContentLength, c.g.cfg.MaxBodyBytes)
	if !c.bodyDone {
		c.g.reads.release(c.who.limitKey) // before answering: a turn is for reading
	}
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		c.refuse(http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("the request body is larger than this node's limit of %d bytes; send a shorter prompt", tooBig.Limit), 0)
		return false
	case errors.As(err, &ne) && ne.Timeout():
		c.refuse(http.StatusRequestTimeout, reasonBodyTimeout, fmt.Sprintf("the request body did not arrive within %s of its headers; send it with the request", c.g.cfg.BodyTimeout), 0)
		return false
	case err != nil:
		closeUnread(c.w, c.r)
		c.status, c.reason, c.decision = 499, "client_gone", audit.DecisionInvalid
		return false
	}
	c.body, c.bodyDone = body, true
	// net/http now watches the connection for the caller leaving; that
	// watch must not time out under a long answer.
	setReadDeadline(c.w, time.Time{})
	if c.req, err = parseRequest(body, c.api); err != nil {
		c.refuse(http.StatusBadRequest, reasonBadRequest, err.Error(), 0)
		return false
	}
	c.model = c.req.Model
	return true
}

// readGate lets each identity read at most n bodies at once; the others
// wait for a turn, oldest first, until their body deadline. Bodies being
// read are memory a caller holds without having been admitted, so this
// bounds it to n × Config.MaxBodyBytes per identity.
type readGate struct {
	n  int
	mu sync.Mutex
	// reading counts each identity's bodies being read; queue holds those
	// waiting, each a channel closed when it is given a turn.
	reading map[string]int
	queue   map[string][]chan struct{}
}

func newReadGate(n int) *readGate {
	return &readGate{n: n, reading: make(map[string]int), queue: make(map[string][]chan struct{})}
}

// acquire waits until who may read a body, at most until deadline; false
// when the turn did not come. A true acquire is paired with release.
func (r *readGate) acquire(who string, deadline time.Time) bool {
	r.mu.Lock()
	if r.reading[who] < r.n && len(r.queue[who]) == 0 {
		r.reading[who]++
		r.mu.Unlock()
		return true
	}
	turn := make(chan struct{})
	r.queue[who] = append(r.queue[who], turn)
	r.mu.Unlock()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-turn:
		return true
	case <-timer.C:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queue[who]
	i := slices.Index(q, turn)
	if i < 0 {
		return true // given the turn as the timer fired
	}
	r.setQueueLocked(who, slices.Delete(q, i, i+1))
	return false
}

// release ends a read of who, passing the turn to the oldest waiting.
func (r *readGate) release(who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if q := r.queue[who]; len(q) > 0 {
		close(q[0])
		r.setQueueLocked(who, q[1:])
		return
	}
	if r.reading[who]--; r.reading[who] <= 0 {
		delete(r.reading, who)
	}
}

func (r *readGate) setQueueLocked(who string, q []chan struct{}) {
	if len(q) == 0 {
		delete(r.queue, who)
		return
	}
	r.queue[who] = q
}
