package tailnettest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"tailscale.com/tsnet"
)

// Login returns the tailnet login name s is signed in as.
func Login(t testing.TB, ctx context.Context, s *tsnet.Server) string {
	t.Helper()
	lc, err := s.LocalClient()
	if err != nil {
		t.Fatal(err)
	}
	st, err := lc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.User[st.Self.UserID].LoginName
}

// Spoofed are identity headers a caller might send to pose as login; a
// guard must ignore them.
func Spoofed(login string) http.Header {
	return http.Header{
		"X-Moat-User": {login}, "X-Moat-Login": {login}, "X-Forwarded-For": {"100.64.0.1"},
		"Tailscale-User-Login": {login}, "X-Webauth-User": {login}, "Authorization": {"Bearer " + login},
	}
}

// Chat sends a streamed chat request from s over the tailnet to the guard
// at base for model, with header added, and returns the status and the
// streamed text (or the error body).
func Chat(ctx context.Context, s *tsnet.Server, base, model string, header http.Header) (int, string, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: s.Dial}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	body := fmt.Sprintf(`{"model":%q,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, model)
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	var text strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var ev struct {
			Choices []struct{ Delta struct{ Content string } } `json:"choices"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return resp.StatusCode, text.String(), fmt.Errorf("event %q: %w", line, err)
		}
		for _, ch := range ev.Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	return resp.StatusCode, text.String(), sc.Err()
}
