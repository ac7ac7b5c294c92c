package mcpguard

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzParseMessage feeds arbitrary bodies to the JSON-RPC reader: it
// must never panic, and what it accepts must re-encode to a message that
// reads back with the same method, id and tool name, since the re-encoded
// form is what goes upstream.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue","arguments":{"id":"X-1"}}}`,
		`{"jsonrpc":"2.0","id":"a","method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":null,"result":{}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		if err != nil {
			return
		}
		again, err := parseMessage(m.encode())
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if again.Method != m.Method || !bytes.Equal(again.ID, m.ID) {
			t.Fatalf("re-encoding changed the message: %+v → %+v", m, again)
		}
		if m.Method != "tools/call" {
			return
		}
		p, err := parseCallParams(m.Params)
		if err != nil {
			return
		}
		q, err := parseCallParams(p.encode(p.Arguments))
		if err != nil || q.Name != p.Name {
			t.Fatalf("re-encoded params name the tool %q, not %q (%v)", q.Name, p.Name, err)
		}
	})
}

// FuzzSSE feeds arbitrary streams to the event reader: no panic, and
// every event it renders ends with a blank line (an empty event is that
// blank line alone).
func FuzzSSE(f *testing.F) {
	f.Add([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n: ping\n\nid: 3\ndata: a\ndata: b\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := bufio.NewReaderSize(bytes.NewReader(b), 16)
		var ev eventBuf
		for {
			line, err := readLine(rd, 1<<10)
			if err != nil {
				return
			}
			if len(line) > 0 {
				if !ev.add(line, 1<<10) {
					return
				}
				continue
			}
			if out := ev.render(func(d []byte) []byte { return d }); string(out) != "\n" && !bytes.HasSuffix(out, []byte("\n\n")) {
				t.Fatalf("event %q does not end with a blank line", out)
			}
			ev.reset()
		}
	})
}
