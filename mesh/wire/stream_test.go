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
