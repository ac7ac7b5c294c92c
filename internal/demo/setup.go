package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
)

// refusedModel is in the demo policy but granted to nobody.
const refusedModel = "restricted-model"

func demoPolicy(model string) string {
	return fmt.Sprintf(`{
  // The demo's policy: demo@example.com may use %[1]q on nodes tagged tag:gpu.
  "groups": { "group:demo": ["demo@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": {
    %[1]q: { "servedBy": ["tag:gpu"] },
    %[2]q: { "servedBy": ["tag:gpu"] },
  },
  "grants": [
    { "src": ["group:demo"], "models": [%[1]q], "mfa": "12h", "limits": { "rpm": 60 }, "audit": { "prompts": "hash" } },
  ],
  "tests": [
    { "src": "demo@example.com", "accept": ["model:%[1]s"], "deny": ["model:%[2]s"] },
  ],
}`, model, refusedModel)
}

// admin calls the coordinator's admin API with a fresh token.
type admin struct {
	url, token string
}

func newAdmin(ctx context.Context, coord *coordinator.Server, url string) (*admin, error) {
	tok, err := coordinator.CreateAPIToken(ctx, coord.Store(), "demo", "demo", 24*time.Hour)
	return &admin{url: url, token: tok}, err
}

func (a *admin) call(method, path string, body any) ([]byte, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, a.url+"/api/v1/admin"+path, strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	return out, nil
}

func (a *admin) put(path, policy string) error {
	_, err := a.call("PUT", path, map[string]string{"text": policy, "message": "demo policy"})
	return err
}

func (a *admin) enrollKey() (string, error) {
	out, err := a.call("POST", "/enroll-keys", map[string]any{"tags": []string{"tag:gpu"}, "expiry": "1h"})
	if err != nil {
		return "", err
	}
	var k struct{ Key string }
	return k.Key, json.Unmarshal(out, &k)
}

// modelSource is the model the demo node serves.
type modelSource struct {
	name, label string
	upstream    guard.Upstream
}

func (m modelSource) model() node.Model { return node.Model{Name: m.name, Upstream: m.upstream} }

// pickModel offers a model server already running on this machine
// (Ollama on 11434, or an OpenAI-compatible one on 8000), else starts the
// built-in stand-in.
func pickModel(delay time.Duration) (modelSource, func(), error) {
	c := &http.Client{Timeout: 500 * time.Millisecond}
	if resp, err := c.Get("http://127.0.0.1:11434/api/tags"); err == nil {
		var tags struct{ Models []struct{ Name string } }
		json.NewDecoder(resp.Body).Decode(&tags)
		resp.Body.Close()
		if len(tags.Models) > 0 {
			name := tags.Models[0].Name
			return modelSource{name: name, label: "your local Ollama (" + name + ")",
				upstream: guard.Upstream{URL: "http://127.0.0.1:11434", Kind: guard.KindOllama}}, func() {}, nil
		}
	}
	if resp, err := c.Get("http://127.0.0.1:8000/v1/models"); err == nil {
		var list struct{ Data []struct{ ID string } }
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list.Data) > 0 {
			name := list.Data[0].ID
			return modelSource{name: name, label: "your local OpenAI-compatible server (" + name + ")",
				upstream: guard.Upstream{URL: "http://127.0.0.1:8000", Kind: guard.KindOpenAI}}, func() {}, nil
		}
	}
	s, err := standin.Start(0, delay)
	if err != nil {
		return modelSource{}, nil, err
	}
	return modelSource{name: "standin", label: "the built-in stand-in (a deterministic answer, not a real model)",
		upstream: guard.Upstream{URL: s.URL, Kind: guard.KindOpenAI}}, func() { s.Close() }, nil
}

// demoPerson is the demo user of the embedded identity provider.
type demoPerson struct {
	email, password, totp string
}

// newDemoUser creates demo@example.com through its setup link, choosing a
// password and enrolling TOTP as a person would in the browser.
func newDemoUser(ctx context.Context, coord *coordinator.Server, url string) (*demoPerson, error) {
	link, err := idp.AddUser(ctx, coord.Store(), "demo@example.com", "Demo User", true, nil, url, time.Hour)
	if err != nil {
		return nil, err
	}
	var pw [10]byte
	rand.Read(pw[:])
	p := &demoPerson{email: "demo@example.com", password: "moat-" + strings.ToLower(base32.StdEncoding.EncodeToString(pw[:]))}
	page, err := browsertest.New(nil).Get(link)
	if err != nil {
		return nil, err
	}
	p.totp = page.Text("code")
	code, _ := mfa.Code(p.totp, time.Now())
	page, err = page.Submit(map[string]string{"password": p.password, "confirm": p.password, "code": code})
	if err != nil || page.Status != http.StatusOK {
		return nil, fmt.Errorf("set up the demo user: %v (status %d)", err, page.Status)
	}
	return p, nil
}

// signIn signs the device whose state directory is dir in as p, through
// the real browser flow, headlessly, and saves its key and login there.
func (p *demoPerson) signIn(ctx context.Context, url, hostname string, dir client.Dir) error {
	priv, err := dir.DeviceKey(true)
	if err != nil {
		return err
	}
	c, err := control.New(control.Config{URL: url})
	if err != nil {
		return err
	}
	start, err := c.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: hostname})
	if err != nil {
		return err
	}
	page, err := browsertest.New(nil).Get(start.AuthURL)
	if err != nil {
		return err
	}
	// The setup used this step's code; a code is good for one use, so the
	// sign-in takes the next step's.
	code, _ := mfa.Code(p.totp, time.Now().Add(mfa.Period))
	for _, fields := range []map[string]string{nil, {"email": p.email, "password": p.password}, {"code": code}} {
		if page, err = page.Submit(fields); err != nil {
			return err
		}
	}
	if !page.Contains("is now connected") {
		return fmt.Errorf("the demo sign-in did not finish (status %d)", page.Status)
	}
	res, err := c.WaitLogin(ctx, start.Poll)
	if err != nil {
		return err
	}
	return dir.SaveLogin(&client.Login{Coordinator: url, Credential: res.Credential, DeviceID: res.DeviceID,
		Addresses: res.Addresses, Expiry: res.Expiry, SignedIn: time.Now()})
}
