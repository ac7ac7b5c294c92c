// Package prometheus_test checks what deploy/ ships for monitoring: the
// metrics the binaries expose pass `promtool check metrics`, the alert
// rules pass `promtool check rules` and their unit tests, and every
// metric an alert or a Grafana dashboard uses is one moat declares.
package prometheus_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/lockdown"
)

// promtool returns the path of promtool. It skips the test, saying why,
// when promtool is missing and `make test` could not install it (not
// root); as root a missing promtool is a failure of scripts/deps.sh.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Geteuid() == 0 {
		t.Fatal("promtool is missing; scripts/deps.sh test installs it (Debian package prometheus)")
	}
	t.Skip("promtool is missing (Debian package prometheus, --no-install-recommends); `make test` as root installs it")
	return ""
}

func runTool(t *testing.T, stdin []byte, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAlertRules(t *testing.T) {
	runTool(t, nil, "check", "rules", "alerts.yml")
	runTool(t, nil, "test", "rules", "alerts_test.yml")
}

// TestExposedMetrics lints what a coordinator and a node guard serve.
func TestExposedMetrics(t *testing.T) {
	tool := promtool(t)
	for name, text := range scrapes(t) {
		cmd := exec.Command(tool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on the %s: %v\n%s", name, err, out)
		}
		if !strings.Contains(text, "moat_build_info{") {
			t.Errorf("the %s exposes no moat_build_info", name)
		}
	}
}

// scrapes returns the /metrics text of a coordinator and of a node's
// local listener, after a refused request so that labelled series exist.
func scrapes(t *testing.T) map[string]string {
	c := coordtest.Start(t, func(cfg *coordinator.Config) {
		cfg.Collectors = append(cfg.Collectors, cli.BuildInfoCollector())
	})
	req, _ := http.NewRequest("GET", c.URL+"/api/v1/admin/users", nil)
	req.Header.Set("Authorization", "Bearer moat_at_unknown")
	fetch(t, req)
	ms := httptest.NewServer(c.MetricsHandler()) // as on --metrics-listen
	defer ms.Close()
	coordText := fetchURL(t, ms.URL)

	status := func() (lockdown.Status, error) {
		return lockdown.Status{Counters: []lockdown.Counter{{Category: "egress", Packets: 3, Bytes: 180}}}, nil
	}
	g, err := guard.New(guard.Config{
		Models:     map[string]guard.Upstream{"m1": {URL: "http://127.0.0.1:1", Kind: "openai"}},
		Collectors: []prometheus.Collector{cli.BuildInfoCollector(), lockdown.NewCollector(status), audit.Collector(t.TempDir())},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.ServeLocal(ln)
	t.Cleanup(func() { g.Close() })
	return map[string]string{"coordinator": coordText, "node": fetchURL(t, "http://"+ln.Addr().String()+"/metrics")}
}

func fetchURL(t *testing.T, url string) string {
	req, _ := http.NewRequest("GET", url, nil)
	return fetch(t, req)
}

func fetch(t *testing.T, req *http.Request) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// declaredRE finds metric names in Go source: prometheus.*Opts Name
// fields and NewDesc calls.
var declaredRE = regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(moat_[a-z0-9_]+)"`)

// declared returns every moat_ metric name the module's code declares.
func declared(t *testing.T) map[string]bool {
	names := map[string]bool{}
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range declaredRE.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

var usedRE = regexp.MustCompile(`\bmoat_[a-z0-9_]+`)

// TestMonitoringUsesDeclaredMetrics: every moat_ metric in the alert
// rules and the Grafana dashboards is declared by the code, and the
// scan of the code sees every metric the binaries really serve.
func TestMonitoringUsesDeclaredMetrics(t *testing.T) {
	names := declared(t)
	if len(names) < 20 {
		t.Fatalf("found only %d declared metrics; the source scan is broken", len(names))
	}
	files, _ := filepath.Glob(filepath.Join("..", "grafana", "dashboards", "*.json"))
	files = append(files, "alerts.yml")
	if len(files) < 4 {
		t.Errorf("want the alert rules and three dashboards, found %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, used := range usedRE.FindAllString(string(b), -1) {
			base := used
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if s, ok := strings.CutSuffix(used, suffix); ok && names[s] {
					base = s
				}
			}
			if !names[base] {
				t.Errorf("%s uses %s, which no moat binary exposes", f, used)
			}
		}
	}
	for name, text := range scrapes(t) {
		for _, m := range regexp.MustCompile(`(?m)^# TYPE (moat_[a-z0-9_]+)`).FindAllStringSubmatch(text, -1) {
			if !names[m[1]] {
				t.Errorf("the %s serves %s, which the source scan missed", name, m[1])
			}
		}
	}
}
