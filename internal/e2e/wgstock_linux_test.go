package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/internal/npmtest"
)

var tunPhoneUL = netip.MustParsePrefix("198.18.0.4/24")

// TestStockWireGuard: `moat wg-config` makes a configuration that
// wireguard-tools accept (`wg-quick strip`, `wg setconf`), and a stock
// wireguard-go interface configured from it in its own namespace reaches
// a node's guard, which answers it as the person who made it.
func TestStockWireGuard(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	wg := npmtest.Need(t, "wg", "wireguard-tools")
	wgQuick := npmtest.Need(t, "wg-quick", "wireguard-tools")
	bin := buildStock(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)

	hosts := underlay(t, "moat-wg", tunCoordUL, tunGPUUL, tunPhoneUL)
	coordNS, gpuNS, phoneNS := hosts[0], hosts[1], hosts[2]

	// The coordinator, for the node across the bridge (https, pinned).
	sys := Start(t)
	ln, err := listenIn(coordNS, netip.AddrPortFrom(tunCoordUL.Addr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	cert, fingerprint := selfSigned(t, tunCoordUL.Addr())
	srv := &http.Server{Handler: sys.Coord.Server, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	gpu := startE2EChild(t, gpuNS, tunChildConfig{Role: "gpu", Coordinator: "https://" + ln.Addr().String(), Fingerprint: fingerprint,
		EnrollKey: sys.Coord.EnrollKey(t, "tag:gpu"), StateDir: t.TempDir(), Endpoint: netip.AddrPortFrom(tunGPUUL.Addr(), tunWGPort)})
	var ready gpuReady
	if err := json.Unmarshal([]byte(gpu.Expect(t, "ready ", 20*time.Second)), &ready); err != nil {
		t.Fatal(err)
	}

	// Alice makes a configuration with `moat wg-config`; wg-quick strips it.
	alice := sys.Coord.AddPerson(t, "alice@example.com", false)
	conf := wgConfigFor(t, ctx, bin, sys, alice)
	dir := t.TempDir()
	confPath := filepath.Join(dir, "moatphone.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	stripped, err := exec.CommandContext(ctx, wgQuick, "strip", confPath).Output()
	if err != nil {
		t.Fatalf("wg-quick strip: %v\n%s", err, conf)
	}
	strippedPath := filepath.Join(dir, "stripped.conf")
	os.WriteFile(strippedPath, stripped, 0o600)

	// A stock wireguard-go interface in the phone's namespace, set up the
	// way wg-quick would: setconf, the Address, up, a route to the node.
	ifname := fmt.Sprintf("mwg%d", os.Getpid()%100000)
	startWireGuardGo(t, phoneNS, bin, wg, ifname)
	if out, err := phoneNS.Command(ctx, wg, "setconf", ifname, strippedPath).CombinedOutput(); err != nil {
		t.Fatalf("wg setconf refused the stripped configuration: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"addr", "add", confAddress(t, conf), "dev", ifname},
		{"link", "set", ifname, "up"},
		{"route", "add", netip.PrefixFrom(ready.MeshAddr, 32).String(), "dev", ifname},
	} {
		if err := phoneNS.IP(args...); err != nil {
			t.Fatal(err)
		}
	}

	// The guard answers the phone as alice.
	phone := startE2EChild(t, phoneNS, tunChildConfig{Role: "phone", GuardURL: "http://" + netip.AddrPortFrom(ready.MeshAddr, tunGuard).String()})
	var res laptopResult
	if err := json.Unmarshal([]byte(phone.Expect(t, "result ", 25*time.Second)), &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK || !res.Done || !slices.Equal(res.Chunks, StandinChunks()) {
		t.Fatalf("chat completion through stock wireguard-go: %d %q done=%v %s", res.Status, res.Chunks, res.Done, res.Body)
	}
	if got := res.Probes["not-granted"]; !strings.HasPrefix(got, "403") && !strings.HasPrefix(got, "404") {
		t.Errorf("a model not granted to alice: %s, want refused", got)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out := sys.Coord.Admin(t, "GET", "/audit?login=alice@example.com", "")
		if strings.Contains(out, `"decision":"allow"`) && strings.Contains(out, "llama") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record for alice's request from the stock client: %s", out)
		}
	}
}

// buildStock builds the stock wireguard-go (the module's main package)
// and moat into a temporary directory.
func buildStock(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "golang.zx2c4.com/wireguard", "github.com/moatmesh/moat/cmd/moat")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// wgConfigFor runs `moat wg-config` against the coordinator, signing p in
// through the URL it prints, and returns the configuration.
func wgConfigFor(t *testing.T, ctx context.Context, bin string, sys *System, person *coordtest.Person) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "moat"), "wg-config", "--coordinator", sys.Coord.URL, "--no-browser",
		"--name", "alice-phone", "--state-dir", t.TempDir())
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var url string
	for url == "" && sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, sys.Coord.URL+"/login/") {
			url = l
		}
	}
	go io.Copy(io.Discard, stderr)
	if url == "" {
		cmd.Wait()
		t.Fatal("moat wg-config printed no sign-in URL")
	}
	if err := sys.Coord.SignIn(url, person); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("moat wg-config: %v", err)
	}
	return stdout.String()
}

// startWireGuardGo runs the stock wireguard-go in the foreground inside
// ns and waits until `wg` can talk to it. It stops when the test ends.
func startWireGuardGo(t *testing.T, ns *netns.NS, bin, wg, ifname string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ns.Command(ctx, filepath.Join(bin, "wireguard"), "-f", ifname)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		// exec.CommandContext kills `ip netns exec`, which is wireguard-go
		// itself after its exec; it removes its UAPI socket on the way out.
		cancel()
		<-done
		os.Remove("/var/run/wireguard/" + ifname + ".sock")
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ns.Command(context.Background(), wg, "show", ifname).Run() == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("wireguard-go exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wireguard-go did not come up within 10s:\n%s", out.String())
		}
	}
}

// confAddress returns the IPv4 prefix of the configuration's Address line.
func confAddress(t *testing.T, conf string) string {
	t.Helper()
	for line := range strings.Lines(conf) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Address = ")
		if !ok {
			continue
		}
		for a := range strings.SplitSeq(rest, ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(a)); err == nil && p.Addr().Is4() {
				return p.String()
			}
		}
	}
	t.Fatalf("no IPv4 Address in the configuration:\n%s", conf)
	return ""
}

// runPhoneChild sends a streamed chat completion for llama, and one for a
// model alice is not granted, to the guard through the kernel (the stock
// wireguard-go interface routes the mesh).
func runPhoneChild(cfg tunChildConfig) error {
	ctx, cancel := untilStdinEnds()
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(model string, stream bool) (*http.Response, error) {
		body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, model, stream)
		var err error
		for deadline := time.Now().Add(15 * time.Second); ; {
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			req, _ := http.NewRequestWithContext(rctx, "POST", cfg.GuardURL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			var resp *http.Response
			if resp, err = hc.Do(req); err == nil {
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				rcancel()
				resp.Body = io.NopCloser(bytes.NewReader(b))
				return resp, rerr
			}
			rcancel()
			if time.Now().After(deadline) {
				return nil, err
			}
		}
	}
	res := laptopResult{Probes: map[string]string{}}
	resp, err := post("llama", true)
	if err != nil {
		return fmt.Errorf("chat completion through stock wireguard-go: %v", err)
	}
	res.Status = resp.StatusCode
	if res.Chunks, res.Done, err = ReadChatStream(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		res.Body = fmt.Sprintf("%s (%v)", b, err)
	}
	if resp, err = post("qwen", false); err != nil {
		res.Probes["not-granted"] = err.Error()
	} else {
		b, _ := io.ReadAll(resp.Body)
		res.Probes["not-granted"] = fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	printLine("result ", res)
	<-ctx.Done()
	return nil
}
