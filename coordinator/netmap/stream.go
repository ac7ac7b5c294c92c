package netmap

import (
	"context"
	"net/http"
	"time"
)

// Netmap stream timing.
const (
	heartbeat    = 25 * time.Second // an empty line, so proxies keep the stream open
	writeTimeout = 15 * time.Second // a client that stops reading is dropped
	touchTimeout = 2 * time.Second  // for recording that a device was seen (see streamwrites.go)
	// touchEvery is how often a stream records that its device was seen
	// (store.Device.LastSeen, shown to admins; who is online right now
	// comes from the presence rows, see replicas.go). At every heartbeat
	// it would be 2,000 writes a second for 50,000 devices.
	touchEvery = 5 * time.Minute
)

// Serve holds device id's netmap stream on w (NDJSON, one netmap per
// line, empty lines as heartbeats) until r's context ends, the device
// leaves the mesh, a write fails, a newer stream of the device replaces
// it (see MaxStreamsPerDevice), or valid, asked at every heartbeat,
// reports that the stream's credential no longer admits the device. When
// the current netmap's sequence number is since (a client resuming after
// a reconnect), it is not sent again.
func (f *Fanout) Serve(w http.ResponseWriter, r *http.Request, id string, since uint64, valid func(context.Context) bool) {
	sub, cancel := f.hub.subscribe(id)
	defer cancel()
	defer f.present(r.Context(), id)()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(e *hubEntry) bool {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		var err error
		if e == nil {
			_, err = w.Write([]byte("\n"))
		} else {
			err = e.writeTo(w, f.relays)
		}
		return err == nil && rc.Flush() == nil
	}
	// sent is the entry of this replica's hub the device holds: a wake
	// for the entry it was just sent (installed between subscribe and
	// current) sends nothing. It starts at since only when since names
	// the current entry: seqs of different replicas are not comparable.
	var sent uint64
	e := f.hub.current(id)
	switch {
	case e == nil:
		// The first stream of the device here (or it signed in a moment
		// ago): its netmap is computed by the next recompute.
		f.recomputeSoon()
	case e.seq == since:
		sent = since
	default:
		if !send(e) {
			return
		}
		sent = e.seq
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	f.seen(id)
	touched := time.Now()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.ended: // a newer stream of this device replaced this one
			return
		case <-tick.C:
			if !valid(r.Context()) || !send(nil) {
				return
			}
			if time.Since(touched) >= touchEvery {
				f.seen(id)
				touched = time.Now()
			}
		case <-sub.wake:
			e := f.hub.current(id)
			if e == nil {
				return
			}
			if e.seq == sent {
				continue
			}
			if !send(e) {
				return
			}
			sent = e.seq
		}
	}
}
