package relay

import (
	"context"
	"maps"
	"testing"

	"github.com/moatmesh/moat/mesh/key"
)

func TestParseDrops(t *testing.T) {
	text := `# TYPE d counter
# HELP d DERP packets dropped by reason and by kind
d{reason="queue_head",kind="disco"} 2
d{reason="queue_head",kind="other"} 111
d{reason="unknown_dest",kind="other"} 0
d{reason="write_error",kind="other"} 7
d{reason="broken",kind="other"} x
not a line
`
	want := map[string]int64{"queue_head": 113, "unknown_dest": 0, "write_error": 7}
	if got := parseDrops(text); !maps.Equal(got, want) {
		t.Fatalf("parseDrops = %v, want %v", got, want)
	}
}

// TestDropsReadsDERP checks that Drops finds DERP's counter once a relay
// runs (the format it parses is DERP's, which could change under it).
func TestDropsReadsDERP(t *testing.T) {
	s, err := NewServer(ServerConfig{Admit: func(context.Context, key.Public) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := Drops()
	for _, reason := range []string{"queue_head", "queue_tail", "unknown_dest", "write_error"} {
		if _, ok := d[reason]; !ok {
			t.Errorf("Drops() = %v: no %q", d, reason)
		}
	}
	if n := DropTotal(); n < 0 {
		t.Errorf("DropTotal() = %d", n)
	}
}
