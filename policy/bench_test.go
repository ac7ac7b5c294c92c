package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The synthetic organisation the benchmarks compile (see docs/policy.md,
// "Performance"): 10,000 people listed in 200 policy groups of 50, nested
// under 20 department groups, plus 50 IdP groups; 100 models in 10
// families served by 10 GPU tags; 500 grants (400 model grants naming 1–3
// groups and 1–4 models or family globs, a third with mfa; 100 network
// grants); and 1,000 members: 900 people's devices and 100 GPU nodes each
// advertising 20 models.
const (
	benchUsers   = 10000
	benchGroups  = 200
	benchDepts   = 20
	benchIdP     = 50
	benchModels  = 100
	benchTags    = 10
	benchGrants  = 500
	benchDevices = 900
	benchNodes   = 100
)

func benchPolicyText() string {
	r := rand.New(rand.NewPCG(7, 7))
	var b strings.Builder
	b.WriteString("{\n\"groups\": {\n")
	for g := range benchGroups {
		var users []string
		for u := g * benchUsers / benchGroups; u < (g+1)*benchUsers/benchGroups; u++ {
			users = append(users, fmt.Sprintf("%q", fmt.Sprintf("user%d@example.com", u)))
		}
		users = append(users, fmt.Sprintf(`"idp:idp%d"`, g%benchIdP))
		fmt.Fprintf(&b, "  \"group:g%d\": [%s],\n", g, strings.Join(users, ", "))
	}
	for d := range benchDepts {
		var members []string
		for g := d; g < benchGroups; g += benchDepts {
			members = append(members, fmt.Sprintf(`"group:g%d"`, g))
		}
		fmt.Fprintf(&b, "  \"group:dept%d\": [%s],\n", d, strings.Join(members, ", "))
	}
	b.WriteString("},\n\"tagOwners\": {\n")
	for t := range benchTags {
		fmt.Fprintf(&b, "  \"tag:gpu%d\": [\"autogroup:admin\"],\n", t)
	}
	b.WriteString("},\n\"models\": {\n")
	for m := range benchModels {
		fmt.Fprintf(&b, "  \"fam%d-model%d\": {\"servedBy\": [\"tag:gpu%d\", \"tag:gpu%d\"]},\n", m%10, m, m%benchTags, (m+3)%benchTags)
	}
	b.WriteString("},\n\"grants\": [\n")
	for g := range benchGrants {
		b.WriteString("  " + benchGrant(r, g) + ",\n")
	}
	b.WriteString("],\n}\n")
	return b.String()
}

func benchGrant(r *rand.Rand, g int) string {
	var src []string
	for range 1 + r.IntN(3) {
		switch r.IntN(3) {
		case 0:
			src = append(src, fmt.Sprintf(`"group:g%d"`, r.IntN(benchGroups)))
		case 1:
			src = append(src, fmt.Sprintf(`"group:dept%d"`, r.IntN(benchDepts)))
		default:
			src = append(src, fmt.Sprintf(`"idp:idp%d"`, r.IntN(benchIdP)))
		}
	}
	if g%5 == 4 {
		return fmt.Sprintf(`{"src": [%s], "dst": ["tag:gpu%d:%d", "tag:gpu%d:9000-9100"]}`, strings.Join(src, ", "), r.IntN(benchTags), 22+r.IntN(3), r.IntN(benchTags))
	}
	var models []string
	for range 1 + r.IntN(4) {
		if r.IntN(4) == 0 {
			models = append(models, fmt.Sprintf(`"fam%d-*"`, r.IntN(10)))
		} else {
			m := r.IntN(benchModels)
			models = append(models, fmt.Sprintf(`"fam%d-model%d"`, m%10, m))
		}
	}
	mfa := ""
	if r.IntN(3) == 0 {
		mfa = fmt.Sprintf(`"mfa": "%dh", `, 1+r.IntN(24))
	}
	return fmt.Sprintf(`{"src": [%s], "models": [%s], %s"limits": {"rpm": %d, "tpm": %d}}`,
		strings.Join(src, ", "), strings.Join(models, ", "), mfa, 10*(1+r.IntN(20)), 10000*(1+r.IntN(20)))
}

func benchMembers() []Member {
	r := rand.New(rand.NewPCG(9, 9))
	ms := make([]Member, 0, benchDevices+benchNodes)
	for i := range benchDevices {
		u := r.IntN(benchUsers)
		ms = append(ms, Member{
			ID:        fmt.Sprintf("device%d", i),
			Identity:  Identity{Login: fmt.Sprintf("user%d@example.com", u), Groups: []string{fmt.Sprintf("idp%d", r.IntN(benchIdP))}},
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})},
		})
	}
	for i := range benchNodes {
		var models []string
		for range 20 {
			m := r.IntN(benchModels)
			models = append(models, fmt.Sprintf("fam%d-model%d", m%10, m))
		}
		ms = append(ms, Member{
			ID:        fmt.Sprintf("node%d", i),
			Identity:  Identity{Tags: []string{fmt.Sprintf("tag:gpu%d", i%benchTags)}},
			Addresses: []netip.Addr{netip.AddrFrom4([4]byte{100, 65, 0, byte(i)})},
			Models:    models,
		})
	}
	return ms
}

func benchPolicy(tb testing.TB) *Policy {
	tb.Helper()
	p, err := Parse("bench.hujson", []byte(benchPolicyText()))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func BenchmarkParse(b *testing.B) {
	src := []byte(benchPolicyText())
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse("bench.hujson", src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	p, members := benchPolicy(b), benchMembers()
	var c *Compiled
	for b.Loop() {
		var err error
		if c, err = p.Compile(members); err != nil {
			b.Fatal(err)
		}
	}
	var peers, access int
	for _, m := range c.Members {
		peers += len(m.Peers)
		for _, a := range m.Access {
			access += len(a.Access)
		}
	}
	b.ReportMetric(float64(peers)/float64(len(c.Members)), "peers/member")
	b.ReportMetric(float64(access), "access-entries")
}

// decideFixture returns a compiled node's guard table and an allowed
// (caller, model) pair on it.
func decideFixture(tb testing.TB) (*GuardTable, string, string) {
	c, err := benchPolicy(tb).Compile(benchMembers())
	if err != nil {
		tb.Fatal(err)
	}
	for i := range c.Members {
		m := &c.Members[i]
		if len(m.Access) == 0 {
			continue
		}
		table, err := m.GuardTable()
		if err != nil {
			tb.Fatal(err)
		}
		return table, m.Access[0].Caller, m.Access[0].Access[0].Model
	}
	tb.Fatal("no node has callers")
	return nil, "", ""
}

func BenchmarkDecide(b *testing.B) {
	table, caller, model := decideFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, v := table.Decide(caller, model, time.Minute, ""); v != Allow {
			b.Fatal(v)
		}
	}
	b.ReportMetric(float64(table.Len()), "table-entries")
}

func TestDecideDoesNotAllocate(t *testing.T) {
	table, caller, model := decideFixture(t)
	allocs := testing.AllocsPerRun(1000, func() {
		table.Decide(caller, model, time.Minute, "")
		table.Decide("unknown", model, time.Minute, "")
	})
	if allocs != 0 {
		t.Errorf("Decide allocates %v times per call", allocs)
	}
}
