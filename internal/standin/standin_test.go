package standin

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestStreamsOpenAIAndOllama(t *testing.T) {
	s, err := Start(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct{ path, body, prefix string }{
		{"/v1/chat/completions", `{"model":"m","stream":true}`, "data: "},
		{"/api/chat", `{"model":"m"}`, "{"},
	} {
		resp, err := http.Post(s.URL+c.path, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := strings.TrimPrefix(sc.Text(), "data: ")
			if line == "" || line == "[DONE]" {
				continue
			}
			var ev struct {
				Choices []struct{ Delta struct{ Content string } } `json:"choices"`
				Message struct{ Content string }                   `json:"message"`
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%s: invalid event %q: %v", c.path, line, err)
			}
			for _, ch := range ev.Choices {
				text.WriteString(ch.Delta.Content)
			}
			text.WriteString(ev.Message.Content)
		}
		resp.Body.Close()
		if text.String() != Answer {
			t.Fatalf("%s: streamed %q, want the stand-in answer", c.path, text.String())
		}
	}
}
