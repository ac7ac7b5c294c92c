package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestStreamReader(t *testing.T) {
	a, b := sampleNetMap(t), sampleNetMap(t)
	b.Seq = 8
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	in := string(ja) + "\n\n\n" + string(jb) + "\n"
	r := NewStreamReader(strings.NewReader(in))
	for _, want := range []uint64{7, 8} {
		nm, err := r.Next()
		if err != nil || nm.Seq != want {
			t.Fatalf("Next = %v, %v; want seq %d", nm, err, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
}

func TestStreamReaderRefusals(t *testing.T) {
	good, _ := json.Marshal(sampleNetMap(t))
	for name, tc := range map[string]struct{ in, want string }{
		"cut off":  {string(good[:40]), "cut off"},
		"garbage":  {"{nope}\n", "invalid JSON"},
		"invalid":  {`{"version":1}` + "\n", "self.key: missing"},
		"too long": {`{"x":"` + strings.Repeat("a", MaxNetMapBytes) + "\"}\n", "over"},
	} {
		_, err := NewStreamReader(strings.NewReader(tc.in)).Next()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	_, err := NewStreamReader(strings.NewReader(`{"x":"` + strings.Repeat("a", MaxNetMapBytes) + "\"}\n")).Next()
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized line: %v, want ErrTooLarge", err)
	}
}

func FuzzStreamReader(f *testing.F) {
	good, _ := json.Marshal(sampleNetMap(f))
	f.Add(append(append(good, '\n', '\n'), good...))
	f.Add([]byte("\n\n{}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewStreamReader(bytes.NewReader(in))
		for range 100 {
			nm, err := r.Next()
			if err != nil {
				return
			}
			if err := nm.Validate(); err != nil {
				t.Fatalf("stream yielded an invalid netmap: %v", err)
			}
		}
	})
}

func FuzzTailnetStream(f *testing.F) {
	m := TailnetMap{Version: Version, Seq: 1, Self: Identity{DeviceID: "d_node", Tags: []string{"tag:gpu"}},
		Rules:  &NodeRules{Grants: []GrantRule{{ID: "grants[0]"}}},
		People: []TailnetPerson{{Identity: Identity{UserID: "u_1", Login: "alice@example.com"}, Access: []ModelAccess{{Model: "m", Grant: 0}}}},
		Tags:   []TailnetTag{{Tag: "tag:ci", Access: []ModelAccess{{Model: "m", Grant: 0}}}}}
	good, _ := json.Marshal(m)
	if _, err := NewStreamReader(bytes.NewReader(append(good, '\n'))).NextTailnet(); err != nil {
		f.Fatalf("the seed map is refused: %v", err)
	}
	f.Add(append(append(good, '\n', '\n'), good...))
	f.Add([]byte("\n{\"version\":1}\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewStreamReader(bytes.NewReader(in))
		for range 100 {
			m, err := r.NextTailnet()
			if err != nil {
				return
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("stream yielded an invalid tailnet map: %v", err)
			}
		}
	})
}
