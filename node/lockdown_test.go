package node

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/lockdown"
)

// TestLockdownHoldsModels: while the lockdown is not in force every
// model answers 503 with the reason; once it is back the models serve
// again, except one another part of the node still stops.
func TestLockdownHoldsModels(t *testing.T) {
	r := newIntegrityRig(t)
	n := &Node{cfg: Config{Models: r.models, Hostname: "gpu1"}, log: r.log, st: &state{DeviceID: "n1"}, guard: r.g,
		stops: newStops(r.g), spool: r.spool, kick: make(chan struct{}, 1)}
	n.stops.set(stopIntegrity, "llama", "weights file does not match its pin")

	n.holdModels(false, "table inet moat is missing (deleted, or the ruleset was flushed)")
	for _, m := range []string{"free", "llama"} {
		code, msg := r.chat(m)
		if code != 503 || !strings.Contains(msg, "lockdown is not in force (table inet moat is missing") {
			t.Errorf("%s while the lockdown is lost: %d %q, want 503 with the reason", m, code, msg)
		}
	}
	if _, msg := r.chat("llama"); !strings.Contains(msg, "does not match its pin") {
		t.Errorf("llama's 503 lost the integrity reason: %q", msg)
	}

	n.holdModels(true, "")
	if code, msg := r.chat("free"); code != 200 {
		t.Errorf("free after the restore: %d %q, want 200", code, msg)
	}
	if code, msg := r.chat("llama"); code != 503 || strings.Contains(msg, "lockdown") {
		t.Errorf("llama after the restore: %d %q, want 503 for its weights only", code, msg)
	}
}

// TestLockdownEventsReported: a loss and a restore are audit records in
// the spool, kick a status report, and travel in the node status, the
// newest MaxLockdownEvents of them.
func TestLockdownEventsReported(t *testing.T) {
	r := newIntegrityRig(t)
	n := &Node{cfg: Config{Models: r.models, Hostname: "gpu1"}, log: r.log, st: &state{DeviceID: "n1"}, guard: r.g,
		stops: newStops(r.g), spool: r.spool, kick: make(chan struct{}, 1)}
	now := time.Now()
	n.onLockdownEvent(lockdown.Event{Time: now, Kind: lockdown.EventLost, Reason: "flushed"})
	select {
	case <-n.kick:
	default:
		t.Error("a loss did not ask for a status report")
	}
	n.onLockdownEvent(lockdown.Event{Time: now, Kind: lockdown.EventRestored, Reason: "re-applied", Took: 30 * time.Millisecond})
	var got []string
	for _, rec := range r.records(apiLockdown) {
		got = append(got, rec.Decision+" "+rec.Reason)
	}
	if strings.Join(got, ",") != "lockdown-lost flushed,lockdown-restored re-applied" {
		t.Errorf("audit records %q", got)
	}
	for range wire.MaxLockdownEvents {
		n.onLockdownEvent(lockdown.Event{Time: now, Kind: lockdown.EventInterfaces, Reason: "renamed"})
	}
	st := lockdownStatus(nil, now)
	st.Events = n.lockdownEvents()
	if st.Mode != "off" || len(st.Events) != wire.MaxLockdownEvents || st.Events[0].Kind != "interfaces" {
		t.Errorf("status %+v", st)
	}
}

func TestNetAdminFromStatus(t *testing.T) {
	for in, want := range map[string]bool{
		"Name:\tx\nCapEff:\t0000000000001000\n": true,  // CAP_NET_ADMIN only
		"CapEff:\t0000000000000400\n":           false, // CAP_NET_BIND_SERVICE only
		"CapEff:\t000001ffffffffff\n":           true,
		"Name:\tx\n":                            false,
	} {
		if got := netAdminIn(bufioScanner(in)); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

func bufioScanner(s string) *bufio.Scanner { return bufio.NewScanner(strings.NewReader(s)) }
