package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/client"
)

// loadStatus returns what a running `moat up` reports, or, with up
// false, what the saved login says when it is not running.
func loadStatus(ctx context.Context, dir client.Dir) (st *client.Status, up bool, err error) {
	l, err := dir.LoadLogin()
	if err != nil {
		return nil, false, err
	}
	st, err = client.FetchStatus(ctx, dir)
	if errors.Is(err, client.ErrNotUp) {
		st = &client.Status{Coordinator: l.Coordinator, Identity: l.Identity, Addresses: l.Addresses, Problem: "moat up is not running; start it with `moat up`"}
		if st.Identity.Expiry.IsZero() {
			st.Identity.Expiry = l.Expiry
		}
		return st, false, nil
	}
	return st, err == nil, err
}

func printStatus(w io.Writer, st *client.Status, now time.Time) {
	id := st.Identity
	fmt.Fprintf(w, "Signed in as:  %s\n", who(id))
	fmt.Fprintf(w, "Device:        %s (%s) %s\n", id.DeviceName, id.DeviceID, joinAddrs(st.Addresses))
	fmt.Fprintf(w, "Key expires:   %s\n", expiry(now, id.Expiry))
	fmt.Fprintf(w, "Last MFA:      %s\n", ago(now, id.LastMFA))
	state := "connected"
	if st.Problem != "" {
		state = st.Problem
	}
	fmt.Fprintf(w, "Coordinator:   %s: %s\n", st.Coordinator, state)
	if st.Endpoint == "" {
		return
	}
	fmt.Fprintf(w, "Endpoint:      %s/v1 (OpenAI), %s (Ollama), %s network stack\n", st.Endpoint, st.Endpoint, st.Backend)
	fmt.Fprintf(w, "API key:       the output of `moat token`%s\n", sameUserNote)
	fmt.Fprintln(w, "Nodes:")
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "  (none: no node serves you a model yet)")
	}
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "  %-20s %-16s handshake %-14s models: %s\n", n.Name, joinAddrs(n.Addresses[:1]), ago(now, n.LastHandshake), strings.Join(n.Models, ", "))
		if p := pathLine(n); p != "" {
			fmt.Fprintf(w, "  %-20s path: %s\n", "", p)
		}
	}
	fmt.Fprintf(w, "Models:        %s\n", orNone(st.Models))
}

func expiry(now, t time.Time) string {
	switch {
	case t.IsZero():
		return "never"
	case !now.Before(t):
		return fmt.Sprintf("%s (EXPIRED; run `moat login`)", t.Local().Format(time.DateTime))
	}
	return fmt.Sprintf("%s (in %s)", t.Local().Format(time.DateTime), t.Sub(now).Round(time.Minute))
}

func orNone(ms []string) string {
	if len(ms) == 0 {
		return "none"
	}
	return strings.Join(ms, ", ")
}

// sameUserNote says, where it holds, that programs of the same user need
// no API key.
var sameUserNote = func() string {
	if runtime.GOOS == "linux" {
		return " (programs running as you on this machine need none)"
	}
	return ""
}()

// pathLine says how packets reach node n: direct with the endpoint and
// round trip, or through the relay.
func pathLine(n client.NodeStatus) string {
	switch n.Path {
	case "direct":
		return fmt.Sprintf("direct %s, round trip %.1f ms", n.Endpoint, n.RTTMillis)
	case "relay":
		return "relayed via " + n.Relay + " (no direct UDP path; see docs/reach.md)"
	case "unproven":
		if n.Endpoint == "" {
			return "no contact: no direct address known and no relay connected"
		}
		return "UDP to " + n.Endpoint + " (not proven yet; no relay connected)"
	}
	return ""
}
