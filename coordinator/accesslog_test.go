package coordinator

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// logSink collects JSON log lines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the log lines whose msg is msg.
func (l *logSink) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func startLoggedCoord(t *testing.T) (*testCoord, *logSink) {
	sink := new(logSink)
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return tc, sink
}

func getLogged(t *testing.T, url, bearerTok, reqID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearerTok != "" {
		req.Header.Set("Authorization", "Bearer "+bearerTok)
	}
	if reqID != "" {
		req.Header.Set(HeaderRequestID, reqID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestAccessLogLine(t *testing.T) {
	tc, sink := startLoggedCoord(t)
	resp := getLogged(t, tc.URL+"/login/l_secretloginid?code=sekritcode", "", "trace-7.a:b")
	if got := resp.Header.Get(HeaderRequestID); got != "trace-7.a:b" {
		t.Errorf("X-Request-Id answered %q, want the caller's", got)
	}
	resp = getLogged(t, tc.URL+"/healthz", "", "bad id with spaces")
	if got := resp.Header.Get(HeaderRequestID); len(got) != 32 || got == "bad id with spaces" {
		t.Errorf("X-Request-Id answered %q, want a fresh 32-hex id", got)
	}
	lines := sink.lines(t, "http request")
	if len(lines) != 2 {
		t.Fatalf("%d access log lines, want 2:\n%s", len(lines), sink)
	}
	first := lines[0]
	for k, want := range map[string]any{
		"request_id": "trace-7.a:b", "route": "/login/:id", "method": "GET", "client": "127.0.0.1",
	} {
		if first[k] != want {
			t.Errorf("access log %s = %v, want %v", k, first[k], want)
		}
	}
	if _, ok := first["status"].(float64); !ok {
		t.Errorf("access log has no status: %v", first)
	}
	if _, ok := first["latency"].(float64); !ok {
		t.Errorf("access log has no latency: %v", first)
	}
	if lines[1]["level"] != "DEBUG" || lines[1]["route"] != "/healthz" {
		t.Errorf("probe line %v, want a DEBUG line for /healthz", lines[1])
	}
	for _, secret := range []string{"l_secretloginid", "sekritcode"} {
		if strings.Contains(sink.String(), secret) {
			t.Errorf("the log holds %q from the raw path or query", secret)
		}
	}
}

// TestRefusedCredentialsLoggedWithoutSecrets: a bad admin token and a bad
// device credential are warnings naming the refusal, the route and the
// client, and neither value is in the log; admin actions are logged, and
// neither the admin token nor the enrollment key they create is.
func TestRefusedCredentialsLoggedWithoutSecrets(t *testing.T) {
	tc, sink := startLoggedCoord(t)
	const badToken = "moat_at_notarealtokenZZZ123"
	const badCred = "moat_dc_notarealcredentialQQQ456"
	if resp := getLogged(t, tc.URL+"/api/v1/admin/users", badToken, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad admin token: status %d, want 401", resp.StatusCode)
	}
	if resp := getLogged(t, tc.URL+"/api/v1/netmap", badCred, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad device credential: status %d, want 401", resp.StatusCode)
	}
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, `{"tagOwners": {"tag:gpu": []}}`)
	status, body := tc.admin(t, tok, "POST", "/enroll-keys", `{"tags":["tag:gpu"]}`)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("create enroll key: %d %s", status, body)
	}
	var created struct{ Key string }
	json.Unmarshal([]byte(body), &created)

	refused := map[string]string{}
	for _, l := range sink.lines(t, "http request") {
		if l["level"] == "WARN" {
			refused[l["route"].(string)] = l["error"].(string)
			if l["client"] != "127.0.0.1" || l["request_id"] == "" {
				t.Errorf("refusal line lacks client or request id: %v", l)
			}
		}
	}
	if refused["/api/v1/admin/users"] != "bad_token" || refused["/api/v1/netmap"] != "bad_credential" {
		t.Errorf("refusals logged %v, want bad_token on the admin API and bad_credential on the netmap", refused)
	}
	actions := sink.lines(t, "admin action")
	if len(actions) != 3 || actions[0]["action"] != actionRefused || actions[2]["action"] != "enrollkey.create" || actions[2]["request_id"] == "" {
		t.Errorf("admin action lines %v, want the refused token, a policy save and an enrollkey.create with its request id", actions)
	}
	log := sink.String()
	for name, secret := range map[string]string{"bad admin token": badToken, "bad device credential": badCred, "admin token": tok, "enrollment key": created.Key} {
		if secret == "" {
			t.Fatalf("no %s to look for", name)
		}
		if strings.Contains(log, secret) || strings.Contains(log, secret[8:]) {
			t.Errorf("the log holds the %s", name)
		}
	}
}
