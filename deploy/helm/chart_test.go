// Package helm tests the Helm chart in moat/: `helm lint --strict`, and
// every manifest `helm template` renders decoded strictly into the
// Kubernetes API types (an unknown or misspelt field fails), with the
// settings that matter checked: the flags the containers get exist, the
// pods run unprivileged, the node pods may reach only the coordinator,
// the GPU node DaemonSet holds only NET_ADMIN and NET_BIND_SERVICE and
// may only list and watch pods.
// It is a module of its own so that the Kubernetes API types never enter
// moat's go.mod. MOAT_HELM names the helm binary (scripts/helm.sh builds
// it); without it the tests skip and say so.
package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

func helm(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("MOAT_HELM")
	if bin == "" {
		t.Skip("MOAT_HELM is not set: build helm with scripts/helm.sh (make test does)")
	}
	return bin
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(helm(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

func TestLint(t *testing.T) {
	if out, err := run(t, "lint", "--strict", "moat", "-f", "testdata/full.yaml"); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
}

// TestRequiredValues: without what it cannot guess, the chart refuses to
// render and says what to set.
func TestRequiredValues(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{nil, "coordinator.publicURL is required"},
		{[]string{"coordinator.publicURL=https://m.example.com"}, "coordinator.database.existingSecret is required"},
		{[]string{"coordinator.publicURL=https://m.example.com", "coordinator.database.existingSecret=db"}, "coordinator.sealKey.existingSecret is required"},
		{[]string{"coordinator.publicURL=https://m.example.com", "coordinator.database.existingSecret=db", "coordinator.sealKey.existingSecret=s"}, "coordinator.ingress.tlsSecret is required"},
	} {
		args := []string{"template", "r", "moat"}
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		out, err := run(t, args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("helm template --set %v: %v, want an error saying %q:\n%s", tc.set, err, tc.want, out)
		}
	}
}

// objects are the rendered manifests by kind and name.
type objects struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	pdbs         map[string]*policyv1.PodDisruptionBudget
	ingresses    map[string]*networkingv1.Ingress
	policies     map[string]*networkingv1.NetworkPolicy
	monitors     map[string]*serviceMonitor
	daemonSets   map[string]*appsv1.DaemonSet
	accounts     map[string]*corev1.ServiceAccount
	roles        map[string]*rbacv1.ClusterRole
	bindings     map[string]*rbacv1.ClusterRoleBinding
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the chart writes (its types are not in k8s.io/api).
type serviceMonitor struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   map[string]any     `json:"metadata"`
	Spec       serviceMonitorSpec `json:"spec"`
}

type serviceMonitorSpec struct {
	JobLabel string `json:"jobLabel"`
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Endpoints []struct {
		Port        string `json:"port"`
		Path        string `json:"path"`
		Interval    string `json:"interval"`
		Relabelings []struct {
			TargetLabel string `json:"targetLabel"`
			Replacement string `json:"replacement"`
		} `json:"relabelings"`
	} `json:"endpoints"`
}

// render runs helm template with a values file (and --set values) and
// decodes every
// document strictly into its type.
func render(t *testing.T, values string, set ...string) *objects {
	t.Helper()
	args := []string{"template", "r", "moat", "-f", values}
	for _, v := range set {
		args = append(args, "--set", v)
	}
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("helm template -f %s %v: %v\n%s", values, set, err, out)
	}
	o := &objects{map[string]*appsv1.Deployment{}, map[string]*appsv1.StatefulSet{}, map[string]*corev1.Service{},
		map[string]*policyv1.PodDisruptionBudget{}, map[string]*networkingv1.Ingress{}, map[string]*networkingv1.NetworkPolicy{},
		map[string]*serviceMonitor{}, map[string]*appsv1.DaemonSet{}, map[string]*corev1.ServiceAccount{},
		map[string]*rbacv1.ClusterRole{}, map[string]*rbacv1.ClusterRoleBinding{}}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("a rendered document is not YAML: %v\n%s", err, doc)
		}
		name := head.Metadata.Name
		var err error
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			err = strictInto(doc, o.deployments, name)
		case "apps/v1 StatefulSet":
			err = strictInto(doc, o.statefulSets, name)
		case "v1 Service":
			err = strictInto(doc, o.services, name)
		case "policy/v1 PodDisruptionBudget":
			err = strictInto(doc, o.pdbs, name)
		case "networking.k8s.io/v1 Ingress":
			err = strictInto(doc, o.ingresses, name)
		case "networking.k8s.io/v1 NetworkPolicy":
			err = strictInto(doc, o.policies, name)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			err = strictInto(doc, o.monitors, name)
		case "apps/v1 DaemonSet":
			err = strictInto(doc, o.daemonSets, name)
		case "v1 ServiceAccount":
			err = strictInto(doc, o.accounts, name)
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			err = strictInto(doc, o.roles, name)
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			err = strictInto(doc, o.bindings, name)
		default:
			err = fmt.Errorf("unexpected kind %s %s", head.APIVersion, head.Kind)
		}
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", head.Kind, name, err, doc)
		}
	}
	return o
}

func strictInto[T any](doc string, m map[string]*T, name string) error {
	v := new(T)
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		return err
	}
	if _, dup := m[name]; dup {
		return fmt.Errorf("rendered twice")
	}
	m[name] = v
	return nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestCoordinator(t *testing.T) {
	o := render(t, "testdata/full.yaml")
	d := o.deployments["r-moat-coordinator"]
	if d == nil {
		t.Fatalf("no coordinator Deployment; have %v", keys(o.deployments))
	}
	if *d.Spec.Replicas < 2 {
		t.Errorf("replicas = %d: one replica is not highly available", *d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	checkEnv(t, c, "moat-coordinator", "serve")
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %+v, liveness %+v; want /readyz and /healthz", c.ReadinessProbe, c.LivenessProbe)
	}
	checkLocked(t, c)
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the coordinator gets a Kubernetes API token it never uses")
	}
	for _, name := range []string{"MOAT_DATABASE", "MOAT_SEAL_KEY", "MOAT_OIDC_CLIENT_SECRET"} {
		if e := envVar(c, name); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "" {
			t.Errorf("%s must come from a Secret, not the manifest: %+v", name, e)
		}
	}
	if p := o.pdbs["r-moat-coordinator"]; p == nil || p.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget: %+v", p)
	}
	in := o.ingresses["r-moat-coordinator"]
	if in == nil || len(in.Spec.TLS) != 1 || in.Spec.TLS[0].SecretName != "moat-tls" || in.Spec.Rules[0].Host != "moat.example.com" {
		t.Errorf("Ingress: %+v", in)
	}
	if s := o.services["r-moat-coordinator-stun"]; s == nil || s.Spec.Ports[0].Protocol != corev1.ProtocolUDP || s.Spec.Ports[0].Port != 3478 {
		t.Errorf("STUN Service: %+v", s)
	}
	np := o.policies["r-moat-coordinator"]
	if np == nil || len(np.Spec.Egress) != 2 || len(np.Spec.Egress[1].To) != 2 {
		t.Errorf("coordinator NetworkPolicy egress: %+v", np)
	}
	m := o.monitors["r-moat-coordinator"]
	if m == nil || m.Spec.Endpoints[0].Port != "metrics" || m.Spec.Endpoints[0].Relabelings[0].Replacement != "moat-coordinator" {
		t.Errorf("ServiceMonitor: %+v", m)
	}
}

func TestNodeSidecar(t *testing.T) {
	o := render(t, "testdata/full.yaml")
	s := o.statefulSets["r-moat-node-llama"]
	if s == nil {
		t.Fatalf("no node StatefulSet; have %v", keys(o.statefulSets))
	}
	var node *corev1.Container
	for i := range s.Spec.Template.Spec.Containers {
		if c := &s.Spec.Template.Spec.Containers[i]; c.Name == "moat-node" {
			node = c
		}
	}
	if node == nil {
		t.Fatal("no moat-node container in the pod")
	}
	checkEnv(t, *node, "moat-node", "join")
	checkLocked(t, *node)
	if e := envVar(*node, "MOAT_NETSTACK"); e == nil || e.Value != "true" {
		t.Errorf("the sidecar must use the userspace stack (it has no NET_ADMIN): %+v", e)
	}
	if e := envVar(*node, "MOAT_KEY"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("the enrollment key must come from a Secret: %+v", e)
	}
	models := 0
	for _, a := range node.Args[1:] {
		if strings.HasPrefix(a, "--model=") {
			models++
		}
	}
	if node.Args[0] != "join" || models != 2 {
		t.Errorf("args = %q, want join and the two models", node.Args)
	}
	np := o.policies["r-moat-node-llama"]
	if np == nil {
		t.Fatal("no NetworkPolicy for the node pods")
	}
	var cidrs []string
	for _, r := range np.Spec.Egress {
		for _, to := range r.To {
			if to.IPBlock != nil {
				cidrs = append(cidrs, to.IPBlock.CIDR)
			}
		}
	}
	if strings.Join(cidrs, " ") != "203.0.113.10/32 192.0.2.0/24" {
		t.Errorf("node pods may reach %v; want only the coordinator and the directUDP networks", cidrs)
	}
	if !strings.Contains(fmt.Sprint(np.Spec.PolicyTypes), "Egress") {
		t.Errorf("the node NetworkPolicy does not restrict egress: %v", np.Spec.PolicyTypes)
	}
}

// checkLocked: the container runs as a user, with no capability and a
// read-only root.
func checkLocked(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
		len(sc.Capabilities.Add) != 0 || fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" {
		b, _ := json.Marshal(sc)
		t.Errorf("container %s is not locked down: %s", c.Name, b)
	}
}

// checkEnv: every MOAT_ variable the container gets is a setting of
// `program command`, as the generated CLI reference (docs/cli) lists them.
func checkEnv(t *testing.T, c corev1.Container, program, command string) {
	t.Helper()
	known := documentedEnv(t, program, command)
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "MOAT_") && !known[e.Name] {
			t.Errorf("container %s sets %s, which `%s %s` does not read (docs/cli/%s.md)", c.Name, e.Name, program, command, program)
		}
	}
	for _, a := range c.Args[1:] {
		flag, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if strings.HasPrefix(a, "--") && !known["MOAT_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))] {
			t.Errorf("container %s passes %s, not a flag of `%s %s`", c.Name, a, program, command)
		}
	}
}

var envCell = regexp.MustCompile("^\\| `--[a-z0-9-]+` \\| `(MOAT_[A-Z0-9_]+)` \\|")

func documentedEnv(t *testing.T, program, command string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/cli/" + program + ".md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "## ") {
			in = l == "## "+program+" "+command
			continue
		}
		if m := envCell.FindStringSubmatch(l); in && m != nil {
			known[m[1]] = true
		}
	}
	if len(known) == 0 {
		t.Fatalf("docs/cli/%s.md lists no settings for %q", program, command)
	}
	return known
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func keys[T any](m map[string]T) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
