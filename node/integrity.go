package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/guard"
)

// DefaultIntegrityInterval is how often pinned weights files are hashed
// again when Config.IntegrityInterval is zero.
const DefaultIntegrityInterval = 10 * time.Minute

// Audit decisions of the integrity checker's event records (API
// "node.integrity"): a model stopped because its weights file failed its
// check, and a stopped model that passes again.
const (
	decisionIntegrityFail = guard.DecisionUnavailable
	decisionIntegrityOK   = "available"
	apiIntegrity          = "node.integrity"
)

// ModelIntegrity is the state of one pinned weights file, as reported to
// the coordinator in the node status ({"integrity":{"NAME":{…}}}).
type ModelIntegrity = wire.ModelIntegrity

// modelSwitch is the part of the guard the checker drives.
type modelSwitch interface {
	SetModelUnavailable(name, reason string)
	SetModelAvailable(name string)
}

// integrity hashes the weights files of the models that pin one and stops
// (and restarts) those models in the guard accordingly.
type integrity struct {
	models []Model // those with SHA256 and File
	guard  modelSwitch
	audit  guard.AuditSink // nil: no event records
	log    *slog.Logger
	node   string
	nodeID string
	now    func() time.Time
	uid    int
	gids   []int // the service's groups

	mu     sync.Mutex
	status map[string]ModelIntegrity
}

// newIntegrity returns a checker for the models of ms that have both a pin
// and a file, and stops them in g until their first check passes. It
// returns nil when no model has both.
func newIntegrity(ms []Model, g modelSwitch, sink guard.AuditSink, log *slog.Logger, node, nodeID string) *integrity {
	in := &integrity{guard: g, audit: sink, log: log, node: node, nodeID: nodeID, now: time.Now,
		uid: os.Geteuid(), gids: serviceGroups(), status: map[string]ModelIntegrity{}}
	for _, m := range ms {
		switch {
		case m.SHA256 != "" && m.File != "":
			in.models = append(in.models, m)
			in.status[m.Name] = ModelIntegrity{Reason: "its weights file has not been verified yet"}
			g.SetModelUnavailable(m.Name, fmt.Sprintf("weights file %s is being checked against its pinned sha256; try again in a few minutes", m.File))
		case m.SHA256 != "":
			log.Warn("model pins a sha256 but names no weights file, so the pin is not checked; add file=PATH to its --model", "model", m.Name)
		case m.File != "":
			log.Warn("model names a weights file but pins no sha256, so the file is not checked; add sha256=HEX to its --model", "model", m.Name)
		}
	}
	if len(in.models) == 0 {
		return nil
	}
	return in
}

func serviceGroups() []int {
	gids, _ := os.Getgroups()
	return append(gids, os.Getegid())
}

// run checks every model now and then every interval until ctx ends,
// calling report after each round that changed the status (and again
// after a round whose report failed).
func (in *integrity) run(ctx context.Context, interval time.Duration, report func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	unsent := false
	for {
		if in.check(ctx) || unsent {
			unsent = false
			if err := report(ctx); err != nil && ctx.Err() == nil {
				unsent = true
				in.log.Warn("integrity status not reported to the coordinator; will retry", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check verifies every pinned file once, applies the results to the guard
// and reports whether the status changed (beyond the check time). A check
// cut short by ctx changes nothing.
func (in *integrity) check(ctx context.Context) (changed bool) {
	for _, m := range in.models {
		res, err := in.verify(ctx, m)
		if err != nil { // cancelled
			return changed
		}
		if in.apply(m, res) {
			changed = true
		}
	}
	return changed
}

// apply records one model's result and acts on a change.
func (in *integrity) apply(m Model, res ModelIntegrity) (changed bool) {
	in.mu.Lock()
	prev, seen := in.status[m.Name]
	in.status[m.Name] = res
	in.mu.Unlock()
	first := !seen || prev.Checked.IsZero()
	if res.Warning != prev.Warning || first {
		if res.Warning != "" {
			in.log.Warn("weights file is readable by others than the service user", "model", m.Name, "file", m.File, "warning", res.Warning)
		}
	}
	changed = first || res.OK != prev.OK || res.Reason != prev.Reason || res.Warning != prev.Warning
	switch {
	case !res.OK && (first || prev.OK || res.Reason != prev.Reason):
		in.guard.SetModelUnavailable(m.Name, res.Reason)
		in.log.Error("model stopped: its weights file failed the integrity check", "model", m.Name, "file", m.File, "reason", res.Reason)
		in.event(m, decisionIntegrityFail, res.Reason, 503)
	case res.OK && (first || !prev.OK):
		in.guard.SetModelAvailable(m.Name)
		if first {
			in.log.Info("weights file matches its pinned sha256; serving the model", "model", m.Name, "file", m.File)
		} else {
			in.log.Info("weights file matches its pinned sha256 again; serving the model again", "model", m.Name, "file", m.File)
			in.event(m, decisionIntegrityOK, "weights file "+m.File+" matches its pinned sha256 again", 200)
		}
	}
	return changed
}

// event appends an audit record for an integrity change.
func (in *integrity) event(m Model, decision, reason string, status int) {
	if in.audit == nil {
		return
	}
	rec := &audit.Record{Time: in.now().UTC(), NodeID: in.nodeID, Node: in.node, Model: m.Name, API: apiIntegrity,
		Decision: decision, Reason: reason, Status: status}
	if err := in.audit.Append(rec); err != nil {
		in.log.Error("integrity audit record lost", "model", m.Name, "err", err)
	}
}

// verify hashes m.File and compares it with m.SHA256. It returns an error
// only when ctx ended during the check.
func (in *integrity) verify(ctx context.Context, m Model) (ModelIntegrity, error) {
	res := ModelIntegrity{}
	f, err := os.Open(m.File)
	if err != nil {
		res.Reason = unreadable(m.File, err)
		res.Checked = in.now()
		return res, nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		res.Warning = in.exposure(m.File, fi)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(h, ctxReader{ctx, f}, buf); err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Reason = unreadable(m.File, err)
		res.Checked = in.now()
		return res, nil
	}
	got := hex.EncodeToString(h.Sum(nil))
	want := normalizeSHA256(m.SHA256)
	res.Checked = in.now()
	if got != want {
		in.log.Debug("weights file hash", "model", m.Name, "file", m.File, "want", want, "got", got)
		res.Reason = fmt.Sprintf("weights file %s does not match its pinned sha256 (want %s, found %s); an admin must check the node", m.File, short(want), short(got))
		return res, nil
	}
	res.OK = true
	return res, nil
}

func unreadable(file string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("weights file %s cannot be read (%v), so its pinned sha256 cannot be checked; an admin must check the node", file, err)
}

// normalizeSHA256 accepts "HEX" and "sha256:HEX" in either case.
func normalizeSHA256(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "sha256:")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// exposure says who besides the service user (and root) can read the
// file: everyone (o+r), a group the service is not in (g+r), or another
// user who owns it (u+r); "" when nobody.
func (in *integrity) exposure(file string, fi os.FileInfo) string {
	mode := fi.Mode().Perm()
	if mode&0o004 != 0 {
		return fmt.Sprintf("weights file %s is readable by every user on this host (mode %04o); run chmod o-r on it", file, mode)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if mode&0o040 != 0 && !slices.Contains(in.gids, int(st.Gid)) {
		group := strconv.Itoa(int(st.Gid))
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name + " (" + group + ")"
		}
		return fmt.Sprintf("weights file %s is readable by group %s, which the service user is not in (mode %04o); run chmod g-r on it or chgrp it to the service's group", file, group, mode)
	}
	if mode&0o400 != 0 && int(st.Uid) != in.uid && st.Uid != 0 {
		owner := strconv.Itoa(int(st.Uid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username + " (" + owner + ")"
		}
		return fmt.Sprintf("weights file %s is owned and readable by user %s, not the service user (mode %04o); chown it to the service user or root", file, owner, mode)
	}
	return ""
}

// snapshot returns the current status of every pinned model.
func (in *integrity) snapshot() map[string]ModelIntegrity {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]ModelIntegrity, len(in.status))
	for k, v := range in.status {
		out[k] = v
	}
	return out
}

// ctxReader stops a long hash when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// startIntegrity starts the checker goroutine, owned by n: Close stops it
// and waits for it.
func (n *Node) startIntegrity() {
	n.integ = newIntegrity(n.cfg.Models, n.stops.from(stopIntegrity), n.spool, n.log, n.cfg.Hostname, string(n.st.DeviceID))
	if n.integ == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopIntegrity = cancel
	n.integWG.Add(1)
	go func() {
		defer n.integWG.Done()
		n.integ.run(ctx, n.cfg.IntegrityInterval, n.advertise)
	}()
}
