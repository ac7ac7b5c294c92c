package helm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestGPUNodeDaemonSet: the Kubernetes node mode renders a DaemonSet on
// the node's network whose only privileges are NET_ADMIN and
// NET_BIND_SERVICE, whose lockdown is the service scope on the inference
// pods (by label through the API, and by cgroup), with the node's whole
// cgroup tree read-only, and an API identity that may only list and
// watch pods. Every variable and flag it gets is a setting of
// `moat-node join`.
func TestGPUNodeDaemonSet(t *testing.T) {
	o := render(t, "testdata/full.yaml")
	ds := o.daemonSets["r-moat-gpu-node"]
	if ds == nil {
		t.Fatalf("no GPU node DaemonSet; have %v", keys(o.daemonSets))
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet || pod.HostPID || pod.HostIPC {
		t.Errorf("pod: hostNetwork %v, dnsPolicy %s, hostPID %v, hostIPC %v; want the node's network only", pod.HostNetwork, pod.DNSPolicy, pod.HostPID, pod.HostIPC)
	}
	if pod.NodeSelector["nvidia.com/gpu.present"] != "true" || len(pod.Tolerations) != 1 {
		t.Errorf("placement: %v %v", pod.NodeSelector, pod.Tolerations)
	}
	c := pod.Containers[0]
	checkEnv(t, c, "moat-node", "join")
	checkNodePrivileges(t, c)
	want := map[string]string{
		"MOAT_LOCKDOWN":              "service",
		"MOAT_LOCKDOWN_POD_SELECTOR": "moat.dev/lockdown=inference",
		"MOAT_LOCKDOWN_POD_CGROUP":   "system.slice/ollama.service",
		"MOAT_LOCKDOWN_POD_ALLOW":    "10.96.0.10/32,192.0.2.7:443",
		"MOAT_NETSTACK":              "true",
	}
	for name, v := range want {
		if e := envVar(c, name); e == nil || e.Value != v {
			t.Errorf("%s = %+v, want %q", name, e, v)
		}
	}
	if e := envVar(c, "MOAT_LOCKDOWN_POD_NODE"); e == nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("MOAT_LOCKDOWN_POD_NODE must be the pod's spec.nodeName: %+v", e)
	}
	if e := envVar(c, "MOAT_KEY"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("the enrollment key must come from a Secret: %+v", e)
	}
	checkCgroupMount(t, pod, c)
	checkPodReader(t, o, pod.ServiceAccountName)
}

// checkNodePrivileges: root for its capabilities (Kubernetes gives none
// to other users), but only NET_ADMIN and NET_BIND_SERVICE, no
// privilege escalation, not privileged, a read-only root.
func checkNodePrivileges(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	b, _ := json.Marshal(sc)
	if sc == nil || sc.Privileged != nil && *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
		fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" || fmt.Sprint(sc.Capabilities.Add) != "[NET_ADMIN NET_BIND_SERVICE]" ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container %s has more than NET_ADMIN and NET_BIND_SERVICE: %s", c.Name, b)
	}
}

// checkCgroupMount: the host's cgroup tree is mounted read-only where
// the lockdown looks for it; nothing else of the host but the state
// directory (and the TUN device when asked for).
func checkCgroupMount(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	paths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			paths[v.Name] = v.HostPath.Path
		}
	}
	var mounted []string
	for _, m := range c.VolumeMounts {
		mounted = append(mounted, paths[m.Name]+"->"+m.MountPath)
		if m.MountPath == "/sys/fs/cgroup" && (!m.ReadOnly || paths[m.Name] != "/sys/fs/cgroup") {
			t.Errorf("the cgroup tree must be the host's, read-only: %+v", m)
		}
	}
	if got := strings.Join(mounted, " "); got != "/var/lib/moat-node->/var/lib/moat-node /sys/fs/cgroup->/sys/fs/cgroup" {
		t.Errorf("host paths mounted: %s", got)
	}
}

// checkPodReader: the DaemonSet's service account may list and watch
// pods and do nothing else.
func checkPodReader(t *testing.T, o *objects, account string) {
	t.Helper()
	if o.accounts[account] == nil {
		t.Fatalf("no ServiceAccount %q; have %v", account, keys(o.accounts))
	}
	b := o.bindings[account]
	if b == nil || b.RoleRef.Kind != "ClusterRole" || len(b.Subjects) != 1 || b.Subjects[0].Name != account {
		t.Fatalf("ClusterRoleBinding: %+v", b)
	}
	r := o.roles[b.RoleRef.Name]
	if r == nil || len(r.Rules) != 1 {
		t.Fatalf("ClusterRole %s: %+v", b.RoleRef.Name, r)
	}
	if rule := r.Rules[0]; fmt.Sprint(rule.APIGroups, rule.Resources, rule.Verbs) != "[] [pods] [list watch]" {
		t.Errorf("the node may %v %v in %q; want only list and watch pods", rule.Verbs, rule.Resources, rule.APIGroups)
	}
}

// TestGPUNodeModes: without a selector there is no API identity at all;
// with tun the device is mounted and the userspace stack is off; without
// any way to name the inference pods the chart refuses.
func TestGPUNodeModes(t *testing.T) {
	o := render(t, "testdata/full.yaml", "gpuNodes.inferencePods.selector=", "gpuNodes.tun=true")
	ds := o.daemonSets["r-moat-gpu-node"]
	if ds == nil {
		t.Fatal("no GPU node DaemonSet")
	}
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	checkEnv(t, c, "moat-node", "join")
	if len(o.accounts)+len(o.roles)+len(o.bindings) != 0 || pod.ServiceAccountName != "" || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("without a selector the node still gets an API identity: %v %v %v", keys(o.accounts), keys(o.roles), pod.AutomountServiceAccountToken)
	}
	for _, name := range []string{"MOAT_LOCKDOWN_POD_SELECTOR", "MOAT_LOCKDOWN_POD_NODE", "MOAT_NETSTACK"} {
		if e := envVar(c, name); e != nil {
			t.Errorf("%s is set: %+v", name, e)
		}
	}
	tun := false
	for _, v := range pod.Volumes {
		tun = tun || v.HostPath != nil && v.HostPath.Path == "/dev/net/tun" && *v.HostPath.Type == corev1.HostPathCharDev
	}
	if !tun {
		t.Error("with tun the TUN device is not mounted")
	}
	out, err := run(t, "template", "r", "moat", "-f", "testdata/full.yaml", "--set", "gpuNodes.inferencePods.selector=", "--set", "gpuNodes.inferencePods.cgroups=null")
	if err == nil || !strings.Contains(out, "gpuNodes.inferencePods needs a selector or cgroups") {
		t.Errorf("no way to name the pods: %v\n%s", err, out)
	}
}
