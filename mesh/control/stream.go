package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// streamIdle is how long a netmap stream may stay silent (the coordinator
// sends a heartbeat every 25 s) before it is taken for dead.
const streamIdle = 75 * time.Second

// errStreamEnded is a netmap stream the coordinator ended cleanly. It
// does so when the device leaves the mesh (revoked, expired, its person
// disabled) and says why on the next request.
var errStreamEnded = errors.New("coordinator closed the netmap stream")

// Stream holds one netmap stream open and calls fn with every netmap,
// resuming after seq (0: from scratch). It returns when the stream ends or
// stays silent too long, fn fails, or ctx is done.
func (c *Client) Stream(ctx context.Context, seq uint64, fn func(*wire.NetMap) error) error {
	req, err := http.NewRequest(http.MethodGet, c.base.String()+"/api/v1/netmap?seq="+strconv.FormatUint(seq, 10), nil)
	if err != nil {
		return err
	}
	return follow(ctx, c, req, (*wire.StreamReader).Next, fn)
}

// follow sends req (with the member's headers and credential) for a
// stream of NDJSON lines and calls fn with each value next reads. It
// returns when the stream ends (errStreamEnded) or stays silent for
// streamIdle, fn fails, or ctx is done.
func follow[T any](ctx context.Context, c *Client, req *http.Request, next func(*wire.StreamReader) (T, error), fn func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	req = req.WithContext(ctx)
	setMemberHeaders(req.Header)
	req.Header.Set("Authorization", "Bearer "+string(c.Credential()))
	resp, err := c.long.Do(req)
	if err != nil {
		return fmt.Errorf("coordinator unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	r := wire.NewStreamReader(&idleReader{resp.Body, idle})
	for {
		v, err := next(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errStreamEnded
			}
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}

// Watch keeps a netmap stream open for as long as ctx lives, reconnecting
// with jittered exponential backoff (up to maxBackoff) and resuming from
// the last netmap it delivered. It calls status with every connection
// problem (nil once connected again) so the caller can tell the person.
// It returns only when ctx is done or the credential is refused (IsAuth).
//
// A stream that was up a while and that the coordinator ended cleanly is
// reopened at once, without a status call: that is how the coordinator
// tells a device it left the mesh, and a revoked device must learn it
// (IsAuth) within moments, not after a backoff.
func (c *Client) Watch(ctx context.Context, fn func(*wire.NetMap), status func(error)) error {
	const minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	var seq uint64
	backoff := minBackoff
	for {
		began := time.Now()
		err := c.Stream(ctx, seq, func(nm *wire.NetMap) error {
			seq, backoff = nm.Seq, minBackoff
			status(nil)
			fn(nm)
			return nil
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if IsAuth(err) {
			return err
		}
		if errors.Is(err, errStreamEnded) && time.Since(began) >= minBackoff {
			continue // at most once per minBackoff of stream time
		}
		status(err)
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, maxBackoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// idleReader restarts the idle timer whenever bytes arrive (heartbeats
// included).
type idleReader struct {
	r    io.Reader
	idle *time.Timer
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		i.idle.Reset(streamIdle)
	}
	return n, err
}
