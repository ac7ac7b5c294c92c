package guard

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/policy"
)

// memCounters is a CounterStore in memory.
type memCounters struct {
	mu   sync.Mutex
	data []byte
}

func (m *memCounters) Load() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data, nil
}

func (m *memCounters) Save(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = b
	return nil
}

// restart stops the guard the way a node does and starts a new one with
// the same configuration (on port 81: the netstack keeps port 80 bound
// a while).
func (m *mesh) restart() {
	m.t.Helper()
	if err := m.g.Close(); err != nil {
		m.t.Fatal(err)
	}
	var err error
	if m.g, err = New(m.cfg); err != nil {
		m.t.Fatal(err)
	}
	m.apply(2)
	ln, err := m.node.Eng.Listen("tcp", ":81")
	if err != nil {
		m.t.Fatal(err)
	}
	m.url = "http://" + netip.AddrPortFrom(m.node.Addrs[0], 81).String()
	go m.g.Serve(ln)
	m.t.Cleanup(func() { m.g.Close() })
}

// TestDayCountSurvivesRestart: the day's tokens are saved while the
// guard runs (so a crash loses at most a second) and a
// restarted guard refuses what the first one would have.
func TestDayCountSurvivesRestart(t *testing.T) {
	kept := &memCounters{}
	m := newMesh(t, policy.Limits{TokensPerDay: 20}, func(c *Config) { c.Counters = kept })
	const body = `{"model":"llama","max_tokens":5}` // reserves 8+5, uses 10+5
	if code, out := m.call(m.alice, "/v1/chat/completions", body); code != 200 {
		t.Fatalf("first request: %d %s", code, out)
	}
	m.waitRecords(1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := kept.Load()
		if strings.Contains(string(b), `"tokens":15`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("day counters not saved while running: %q", b)
		}
		<-tick()
	}
	m.restart()
	code, out := m.call(m.alice, "/v1/chat/completions", body)
	if code != 429 || !strings.Contains(out, "20 tokens a day") || !strings.Contains(out, "5 are left") {
		t.Fatalf("after restart: %d %s", code, out)
	}
}

// TestDamagedCountersFailClosed: a guard does not start with a day's
// counts it cannot read.
func TestDamagedCountersFailClosed(t *testing.T) {
	kept := &memCounters{data: []byte(`{"days":[{"who":`)}
	_, err := New(Config{Models: map[string]Upstream{"m": {URL: "http://127.0.0.1:1", Kind: KindOpenAI}}, Counters: kept})
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("New with damaged day counters: %v", err)
	}
}

// TestOldDayIsDropped: yesterday's counts are not carried into today.
func TestOldDayIsDropped(t *testing.T) {
	now := time.Now()
	l := newLocalLimiter()
	l.loadDays([]dayEntry{{Who: "a", Grant: "g", Day: now.UTC().Unix()/86400 - 1, Tokens: 99}}, now)
	if days, _ := l.days(now); len(days) != 0 {
		t.Fatalf("yesterday's count kept: %+v", days)
	}
}
