// Package kubepods tells the lockdown which pods of a Kubernetes node to
// hold (lockdown.PodSource): the pods on this node that carry a label,
// listed and then watched through the API server with the pod's service
// account (which needs only list and watch on pods), each named by the
// cgroups the kubelet makes for a pod (systemd and cgroupfs drivers). A
// pod is known from the moment it is bound to the node, before the
// kubelet makes its cgroup, so the lockdown holds the cgroup as it
// appears. It speaks the API's JSON over HTTPS itself: no client
// library enters the product.
package kubepods

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// In-cluster defaults: where a pod finds its service account.
const (
	DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	DefaultRetry     = 2 * time.Second
)

// Source is a lockdown.PodSource over the Kubernetes API.
type Source struct {
	// Selector is a label selector, e.g. "moat.dev/lockdown=inference".
	// Required.
	Selector string
	// Node is this node's name (the pods' spec.nodeName). Required.
	Node string
	// API is the API server's URL. Empty means in-cluster:
	// https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
	API string
	// TokenFile holds the bearer token, read again for every request
	// (bound tokens are rotated). Empty means DefaultTokenFile.
	TokenFile string
	// CAFile holds the CA that signs the API server's certificate. Empty
	// means DefaultCAFile. Ignored when Client is set.
	CAFile string
	// Client makes the requests. Nil means one that trusts CAFile only.
	Client *http.Client
	// Retry is the wait after a failed list or a broken watch. 0 means
	// DefaultRetry (2s).
	Retry time.Duration
}

// pod is what the source reads of a Pod.
type pod struct {
	Metadata struct {
		Name            string `json:"name"`
		Namespace       string `json:"namespace"`
		UID             string `json:"uid"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Spec struct {
		HostNetwork bool `json:"hostNetwork"`
	} `json:"spec"`
}

func (p pod) name() string { return p.Metadata.Namespace + "/" + p.Metadata.Name }

// Check says what is missing or wrong in s, or nil.
func (s *Source) Check() error {
	var errs []error
	if s.Selector == "" {
		errs = append(errs, errors.New("no label selector"))
	}
	if s.Node == "" {
		errs = append(errs, errors.New("no node name (the pod's spec.nodeName)"))
	}
	if s.API == "" && (os.Getenv("KUBERNETES_SERVICE_HOST") == "" || os.Getenv("KUBERNETES_SERVICE_PORT") == "") {
		errs = append(errs, errors.New("not in a Kubernetes pod (KUBERNETES_SERVICE_HOST and _PORT are not set)"))
	}
	return errors.Join(errs...)
}

// Run lists the pods, then watches them, and calls update with the
// patterns of every listed pod after each change; with an error too when
// a listed pod does not use the host's network (its packets never pass
// the node's own sockets, so the lockdown cannot hold it), or with nil
// patterns and an error while the API cannot be asked (the lockdown keeps
// the last patterns). It lists again after a broken watch.
func (s *Source) Run(ctx context.Context, update func(patterns []string, err error)) {
	retry := s.Retry
	if retry <= 0 {
		retry = DefaultRetry
	}
	client, err := s.client()
	for ctx.Err() == nil {
		if err == nil {
			err = s.listAndWatch(ctx, client, update)
		}
		if ctx.Err() != nil {
			return
		}
		update(nil, fmt.Errorf("pods labelled %s on node %s: %w", s.Selector, s.Node, err))
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
		if client != nil {
			err = nil
		} else {
			client, err = s.client()
		}
	}
}

// listAndWatch lists the pods and follows the watch from that list
// until it breaks; it returns why.
func (s *Source) listAndWatch(ctx context.Context, client *http.Client, update func([]string, error)) error {
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []pod `json:"items"`
	}
	body, err := s.get(ctx, client, nil)
	if err != nil {
		return err
	}
	err = json.NewDecoder(body).Decode(&list)
	body.Close()
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	pods := map[string]pod{}
	for _, p := range list.Items {
		pods[p.Metadata.UID] = p
	}
	update(state(pods))
	return s.watch(ctx, client, list.Metadata.ResourceVersion, pods, update)
}

func (s *Source) watch(ctx context.Context, client *http.Client, rv string, pods map[string]pod, update func([]string, error)) error {
	body, err := s.get(ctx, client, url.Values{"watch": {"1"}, "resourceVersion": {rv}, "allowWatchBookmarks": {"true"}})
	if err != nil {
		return err
	}
	defer body.Close()
	go func() { // a watch stream ends only when the server ends it
		<-ctx.Done()
		body.Close()
	}()
	dec := json.NewDecoder(bufio.NewReader(body))
	for {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			return fmt.Errorf("watch ended: %w", err)
		}
		var p pod
		if err := json.Unmarshal(ev.Object, &p); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			pods[p.Metadata.UID] = p
		case "DELETED":
			delete(pods, p.Metadata.UID)
		case "BOOKMARK":
			continue
		default: // ERROR: e.g. 410 Gone, the resource version is too old
			return fmt.Errorf("watch: %s %s", ev.Type, ev.Object)
		}
		update(state(pods))
	}
}

// state is the patterns of pods and the error naming those the lockdown
// cannot hold.
func state(pods map[string]pod) ([]string, error) {
	patterns := []string{}
	var apart []string
	for _, p := range pods {
		ps, err := Patterns(p.Metadata.UID)
		if err != nil {
			apart = append(apart, p.name()+" ("+err.Error()+")")
			continue
		}
		patterns = append(patterns, ps...)
		if !p.Spec.HostNetwork {
			apart = append(apart, p.name())
		}
	}
	slices.Sort(patterns)
	if len(apart) == 0 {
		return patterns, nil
	}
	slices.Sort(apart)
	return patterns, fmt.Errorf("pods %s do not use the host's network (hostNetwork: true): the lockdown on this node cannot hold them", strings.Join(apart, ", "))
}

var uidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Patterns are the cgroup v2 paths (below the cgroup2 mount) the kubelet
// gives the pod with this UID: under the systemd driver
// kubepods.slice/[kubepods-QOS.slice/]kubepods[-QOS]-podUID.slice, with
// the UID's dashes as underscores; under the cgroupfs driver
// kubepods/[QOS/]podUID.
func Patterns(uid string) ([]string, error) {
	if !uidRE.MatchString(uid) {
		return nil, fmt.Errorf("pod UID %q is not a UUID", uid)
	}
	u := strings.ReplaceAll(uid, "-", "_")
	return []string{
		"kubepods.slice/kubepods-pod" + u + ".slice",
		"kubepods.slice/kubepods-*.slice/kubepods-*-pod" + u + ".slice",
		"kubepods/pod" + uid,
		"kubepods/*/pod" + uid,
	}, nil
}

// get asks for this node's pods with the label, with more query.
func (s *Source) get(ctx context.Context, client *http.Client, more url.Values) (io.ReadCloser, error) {
	base := s.API
	if base == "" {
		base = "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	}
	q := url.Values{"labelSelector": {s.Selector}, "fieldSelector": {"spec.nodeName=" + s.Node}}
	for k, v := range more {
		q[k] = v
	}
	token, err := os.ReadFile(cmp.Or(s.TokenFile, DefaultTokenFile))
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/api/v1/pods?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s (the service account needs list and watch on pods): %s", resp.Status, msg)
	}
	return resp.Body, nil
}

func (s *Source) client() (*http.Client, error) {
	if s.Client != nil {
		return s.Client, nil
	}
	pem, err := os.ReadFile(cmp.Or(s.CAFile, DefaultCAFile))
	if err != nil {
		return nil, fmt.Errorf("API server CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("API server CA %s holds no certificate", cmp.Or(s.CAFile, DefaultCAFile))
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}
