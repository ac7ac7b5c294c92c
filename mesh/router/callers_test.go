package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const testToken = "moat_lt_test-token"

// A call as another user would make it: path and headers (name, value…).
type call struct {
	Path    string
	Headers []string
}

type answer struct {
	Status int
	Body   string
}

func (m *testMesh) call(t *testing.T, c call) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.srv.URL+c.Path, nil)
	for i := 0; i+1 < len(c.Headers); i += 2 {
		req.Header.Set(c.Headers[i], c.Headers[i+1])
	}
	status, body := do(t, req)
	return answer{status, body}
}

// The same user needs no token; a wrong one does not matter to them, as
// the system vouches for who they are.
func TestCallerOfSameUserNeedsNoToken(t *testing.T) {
	m := newMesh(t, func(c *Config) { c.Token = testToken }, newMember(t, 2, "gpu-a", "m"))
	for _, c := range []call{{"/v1/models", nil}, {"/api/tags", nil}, {"/v1/models", []string{"Authorization", "Bearer sk-other"}}} {
		if a := m.call(t, c); a.Status != http.StatusOK {
			t.Errorf("%+v as the same user: %d %s", c, a.Status, a.Body)
		}
	}
}

// Another user of the machine (here: nobody, from a helper process) is
// refused without the token or with a wrong one, in the API's own error
// shape, and served with the token in either header.
func TestCallerOfOtherUserNeedsToken(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	m := newMesh(t, func(c *Config) { c.Token = testToken }, newMember(t, 2, "gpu-a", "m"))
	calls := []call{
		{"/v1/models", nil},
		{"/v1/models", []string{"Authorization", "Bearer moat_lt_wrong"}},
		{"/api/tags", nil},
		{"/v1/models", []string{"Authorization", "Bearer " + testToken}},
		{"/api/tags", []string{"x-api-key", testToken}},
	}
	got := callAsNobody(t, m.srv.URL, calls)
	for i, want := range []struct {
		status int
		code   string // OpenAI's error code; "" for Ollama's shape or 200
	}{{401, "missing_api_key"}, {401, "invalid_api_key"}, {401, ""}, {200, ""}, {200, ""}} {
		a := got[i]
		if a.Status != want.status {
			t.Errorf("%+v as nobody: %d %s; want %d", calls[i], a.Status, a.Body, want.status)
			continue
		}
		switch {
		case want.code != "":
			if e := openAIError(t, a.Body); e.Code != want.code || e.Type != "authentication_error" || !strings.Contains(e.Message, "moat token") {
				t.Errorf("%+v: %+v", calls[i], e)
			}
		case a.Status == 401:
			if msg := ollamaError(t, a.Body); !strings.Contains(msg, "moat token") {
				t.Errorf("%+v: %q", calls[i], msg)
			}
		}
	}
}

// callAsNobody runs this test binary as uid/gid 65534 to make calls to
// base, and returns their answers.
func callAsNobody(t *testing.T, base string, calls []call) []answer {
	t.Helper()
	dir, err := os.MkdirTemp("", "moat-caller-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "router.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(calls)
	cmd := exec.Command(bin, "-test.run=^TestHelperCaller$")
	cmd.Env = []string{"MOAT_TEST_CALLER_BASE=" + base, "MOAT_TEST_CALLER_CALLS=" + string(spec)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	var got []answer
	if _, js, ok := strings.Cut(string(out), "ANSWERS "); !ok || json.Unmarshal([]byte(strings.SplitN(js, "\n", 2)[0]), &got) != nil || len(got) != len(calls) {
		t.Fatalf("helper printed:\n%s", out)
	}
	return got
}

// TestHelperCaller is the helper process of callAsNobody.
func TestHelperCaller(t *testing.T) {
	base := os.Getenv("MOAT_TEST_CALLER_BASE")
	if base == "" {
		t.Skip("helper process only")
	}
	var calls []call
	if err := json.Unmarshal([]byte(os.Getenv("MOAT_TEST_CALLER_CALLS")), &calls); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		t.Fatal("the helper runs as root")
	}
	var got []answer
	for _, c := range calls {
		req, _ := http.NewRequest(http.MethodGet, base+c.Path, nil)
		for i := 0; i+1 < len(c.Headers); i += 2 {
			req.Header.Set(c.Headers[i], c.Headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, answer{resp.StatusCode, string(b)})
	}
	js, _ := json.Marshal(got)
	fmt.Printf("ANSWERS %s\n", js)
}
