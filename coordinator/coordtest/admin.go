package coordtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator"
)

// Admin calls the coordinator's admin API with an API token made on first
// use, failing the test on any answer but 2xx, and returns the body.
func (c *Coord) Admin(t testing.TB, method, path, body string) string {
	t.Helper()
	if c.token == "" {
		tok, err := coordinator.CreateAPIToken(context.Background(), c.Store(), "coordtest", "test", 0)
		if err != nil {
			t.Fatal(err)
		}
		c.token = tok
	}
	req, _ := http.NewRequest(method, c.URL+"/api/v1/admin"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return string(b)
}

// SavePolicy puts text in force through the admin API.
func (c *Coord) SavePolicy(t testing.TB, text string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text, "message": "test"})
	c.Admin(t, "PUT", "/policy", string(b))
}

// EnrollKey makes an enrollment key for tags and returns its secret.
func (c *Coord) EnrollKey(t testing.TB, tags ...string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"tags": tags})
	var k struct{ Key string }
	if err := json.Unmarshal([]byte(c.Admin(t, "POST", "/enroll-keys", string(b))), &k); err != nil || k.Key == "" {
		t.Fatalf("enrollment key answer: %v", err)
	}
	return k.Key
}
