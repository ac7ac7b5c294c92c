package guard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/engine/enginetest"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/policy"
)

func tick() <-chan time.Time { return time.After(2 * time.Millisecond) }

// member is one engine of a test mesh with its identity.
type member struct {
	*enginetest.Member
	id wire.Identity
}

func newMember(t testing.TB, n int, id wire.Identity) *member {
	t.Helper()
	id.DeviceID = wire.DeviceID(fmt.Sprintf("dev%d", n))
	return &member{Member: enginetest.New(t, n), id: id}
}

func (m *member) peer(access ...wire.ModelAccess) wire.Peer {
	p := m.Peer(m.id)
	p.Access = access
	return p
}

func (m *member) netmap(seq uint64, rules *wire.NodeRules, peers ...wire.Peer) *wire.NetMap {
	nm := m.NetMap(seq, m.id, peers...)
	nm.Rules = rules
	return nm
}

func (m *member) client() *http.Client { return m.Client() }

// mesh is a node running the guard, callers alice (granted), bob (no
// grant) and carol (granted, stale MFA), the stub upstream and the spool.
type mesh struct {
	t                 testing.TB
	node              *member
	alice, bob, carol *member
	up                *stub
	g                 *Guard
	cfg               Config // g's configuration
	dir               string
	spool             *audit.Spool
	url               string // the guard on the node's mesh address
	rules             *wire.NodeRules
	aliceAccess       []wire.ModelAccess
}

// models served by the node in tests; "dead" points at a closed port.
var testModels = []string{"llama", "bare", "slow", "drip", "qwen", "dead"}

func newMesh(t testing.TB, lim policy.Limits, tweak func(*Config)) *mesh {
	t.Helper()
	now := time.Now()
	m := &mesh{t: t, up: newStub(t), dir: t.TempDir()}
	m.node = newMember(t, 1, wire.Identity{Tags: []string{"tag:gpu"}})
	m.alice = newMember(t, 2, wire.Identity{UserID: "u-alice", Login: "alice@example.com", LastMFA: now.Add(-time.Hour), Expiry: now.Add(12 * time.Hour), Admin: true})
	m.bob = newMember(t, 3, wire.Identity{UserID: "u-bob", Login: "bob@example.com", LastMFA: now.Add(-time.Hour), Expiry: now.Add(12 * time.Hour)})
	m.carol = newMember(t, 4, wire.Identity{UserID: "u-carol", Login: "carol@example.com", LastMFA: now.Add(-20 * time.Hour), Expiry: now.Add(12 * time.Hour)})
	m.rules = &wire.NodeRules{Grants: []wire.GrantRule{{ID: "grants[0]", MFA: wire.Duration(12 * time.Hour), Limits: wire.Limits(lim), Audit: wire.AuditRules{Prompts: "hash"}}}}
	for _, mod := range testModels {
		m.aliceAccess = append(m.aliceAccess, wire.ModelAccess{Model: mod, Grant: 0})
	}
	var err error
	if m.spool, err = audit.Open(m.dir, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.spool.Close() })
	cfg := Config{Models: map[string]Upstream{}, NodeName: "gpu1", NodeID: "n1", Audit: m.spool, AuditKey: []byte("k")}
	for _, mod := range testModels {
		u := Upstream{URL: m.up.srv.URL, Kind: KindOpenAI}
		switch mod {
		case "qwen":
			u.Kind = KindOllama
		case "dead":
			u.URL = "http://127.0.0.1:1"
		}
		cfg.Models[mod] = u
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m.cfg = cfg
	if m.g, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	m.apply(1)
	for _, c := range []*member{m.alice, m.bob, m.carol} {
		if err := c.Eng.Reconfig(c.netmap(1, nil, m.node.peer())); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := m.node.Eng.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	go m.g.Serve(ln)
	t.Cleanup(func() { m.g.Close() })
	m.url = "http://" + netip.AddrPortFrom(m.node.Addrs[0], 80).String()
	return m
}

// nodeNetMap is the node's netmap: alice and carol granted everything, bob
// nothing.
func (m *mesh) nodeNetMap(seq uint64) *wire.NetMap {
	return m.node.netmap(seq, m.rules, m.alice.peer(m.aliceAccess...), m.bob.peer(), m.carol.peer(m.aliceAccess...))
}

func (m *mesh) apply(seq uint64) {
	m.t.Helper()
	nm := m.nodeNetMap(seq)
	if err := m.node.Eng.Reconfig(nm); err != nil {
		m.t.Fatal(err)
	}
	if err := m.g.SetNetMap(nm); err != nil {
		m.t.Fatal(err)
	}
}

// post sends a JSON body from who to path and returns the response.
func (m *mesh) post(who *member, path, body string, hdr ...string) *http.Response {
	m.t.Helper()
	req, _ := http.NewRequest("POST", m.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := who.client().Do(req)
	if err != nil {
		m.t.Fatalf("POST %s: %v", path, err)
	}
	return resp
}

// call posts and reads the whole answer.
func (m *mesh) call(who *member, path, body string, hdr ...string) (int, string) {
	m.t.Helper()
	resp := m.post(who, path, body, hdr...)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// records reads the spool.
func (m *mesh) records() []audit.Record {
	m.t.Helper()
	b, err := readSpool(m.dir)
	if err != nil {
		m.t.Fatal(err)
	}
	var out []audit.Record
	for line := range bytes.Lines(b) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			break // a record still being written; waitRecords reads again
		}
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			m.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// waitRecords waits until the spool holds n records (the record is
// written after the answer ends).
func (m *mesh) waitRecords(n int) []audit.Record {
	m.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if recs := m.records(); len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("spool has %d records, want %d", len(m.records()), n)
		}
		<-tick()
	}
}

// events reads an SSE stream's data payloads.
func events(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func ctxTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func readSpool(dir string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, audit.SpoolFile)) }
