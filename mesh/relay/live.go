package relay

import (
	"context"
	"time"
)

// A relay that goes silent without closing the connection (its host
// gone, a middlebox dropping the flow) would otherwise be noticed only by
// TCP: minutes while idle, up to a quarter of an hour with data in
// flight, all that time "connected" and so never left for another relay.
// So the client pings a relay it has not heard from, soon while it is
// sending to it and now and then while idle, and drops the connection
// (and so reconnects, or lets the member choose another relay) when the
// ping goes unanswered. DERP answers pings itself; its own keepalive
// comes only every minute.
var (
	// liveBusy: a relay sent to since it was last heard, and not heard
	// for this long, is pinged.
	liveBusy = 3 * time.Second
	// liveIdle: a relay not heard for this long is pinged anyway.
	liveIdle = 25 * time.Second
	// livePingWait is how long a ping may go unanswered.
	livePingWait = 3 * time.Second
	// liveTick is how often the client looks.
	liveTick = time.Second
)

// watch pings a silent relay and drops its connection when the ping goes
// unanswered, until Close.
func (c *Client) watch() {
	defer c.wg.Done()
	t := time.NewTicker(liveTick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if !c.connected.Load() {
			continue
		}
		heard := c.heard.Load()
		quiet := time.Since(time.Unix(0, heard))
		if quiet < liveBusy || (quiet < liveIdle && c.sent.Load() <= heard) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), livePingWait)
		err := c.dc.Ping(ctx)
		cancel()
		select {
		case <-c.done:
			return
		default:
		}
		if err == nil {
			c.heard.Store(time.Now().UnixNano())
			continue
		}
		c.log.Warn("relay silent: no answer to a ping; reconnecting", "relay", c.cfg.URL, "quiet", quiet.Round(time.Millisecond), "err", err)
		if cc := c.conn.Load(); cc != nil {
			cc.Close() // the receive loop sees it and reconnects
		}
	}
}
