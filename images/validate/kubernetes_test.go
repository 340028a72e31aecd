package validate

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// The plain Kubernetes objects: k8s.io/kubernetes' own validation is not importable as a module
// (its go.mod replaces every k8s.io/* staging repo), so each object is decoded strictly into the
// k8s.io/api types (an unknown or misspelt field fails) and checked for what the launcher needs.
func TestKubernetesObjects(t *testing.T) {
	paths, err := filepath.Glob("../kubernetes/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in images/kubernetes (%v)", err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := splitDocuments(data)
			if err != nil {
				t.Fatal(err)
			}
			var deployments []*appsv1.Deployment
			var services []*corev1.Service
			for _, d := range docs {
				switch {
				case d.APIVersion == "apps/v1" && d.Kind == "Deployment":
					dep := &appsv1.Deployment{}
					if err := yaml.UnmarshalStrict(d.raw, dep); err != nil {
						t.Fatalf("strict decode into apps/v1 Deployment: %v", err)
					}
					deployments = append(deployments, dep)
				case d.APIVersion == "v1" && d.Kind == "Service":
					svc := &corev1.Service{}
					if err := yaml.UnmarshalStrict(d.raw, svc); err != nil {
						t.Fatalf("strict decode into v1 Service: %v", err)
					}
					services = append(services, svc)
				default:
					t.Errorf("unexpected object %s %s", d.APIVersion, d.Kind)
				}
			}
			if len(deployments) != 1 || len(services) != 1 {
				t.Fatalf("want one Deployment and one Service, got %d and %d", len(deployments), len(services))
			}
			checkDeployment(t, deployments[0])
			checkServiceSelectsPods(t, services[0], deployments[0])
		})
	}
}

func checkDeployment(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	for _, msg := range validation.IsDNS1123Subdomain(dep.Name) {
		t.Errorf("name %q: %s", dep.Name, msg)
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the template's labels %v (%v)", dep.Spec.Selector,
			dep.Spec.Template.Labels, err)
	}
	spec := dep.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, probe := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe of the admin endpoint", name)
			continue
		}
		port := probe.HTTPGet.Port
		if port.StrVal != "" {
			if _, ok := ports[port.StrVal]; !ok {
				t.Errorf("%s names port %q, not a container port", name, port.StrVal)
			}
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readinessProbe path %q: /readyz is the one that waits for the gate", c.ReadinessProbe.HTTPGet.Path)
	}
	if envValue(c.Env, "PORT") == "" {
		t.Error("PORT unset: nothing to gate (Knative sets it; plain Kubernetes does not)")
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		t.Error("no preStop: SIGTERM would race the endpoints update")
	}
	preStop := preStopSeconds(c.Lifecycle)
	grace, err := launcherGrace(c.Env)
	if err != nil {
		t.Fatal(err)
	}
	if spec.TerminationGracePeriodSeconds == nil ||
		*spec.TerminationGracePeriodSeconds < preStop+int64(grace.Seconds())+1 {
		t.Errorf("terminationGracePeriodSeconds %v < preStop %d s + grace %v + 1 s",
			spec.TerminationGracePeriodSeconds, preStop, grace)
	}
	psc := spec.SecurityContext
	sc := c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext: want runAsNonRoot and a non-root runAsUser")
	}
	if (psc == nil || psc.SeccompProfile == nil) && (sc == nil || sc.SeccompProfile == nil) {
		t.Error("no seccompProfile")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) == 0 || sc.Capabilities.Drop[0] != "ALL" ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container securityContext: want allowPrivilegeEscalation false, capabilities drop ALL, readOnlyRootFilesystem")
	}
	checkCacheVolume(t, c, spec.Volumes)
}

// preStopSeconds: how long an exec `sleep N` or a sleep action preStop holds SIGTERM back.
func preStopSeconds(l *corev1.Lifecycle) int64 {
	if l == nil || l.PreStop == nil {
		return 0
	}
	if s := l.PreStop.Sleep; s != nil {
		return s.Seconds
	}
	if e := l.PreStop.Exec; e != nil && len(e.Command) == 2 && e.Command[0] == "sleep" {
		var n int64
		for _, ch := range e.Command[1] {
			if ch < '0' || ch > '9' {
				return 0
			}
			n = n*10 + int64(ch-'0')
		}
		return n
	}
	return 0
}

func checkServiceSelectsPods(t *testing.T, svc *corev1.Service, dep *appsv1.Deployment) {
	t.Helper()
	if len(svc.Spec.Selector) == 0 ||
		!labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select the Deployment's pods %v", svc.Spec.Selector, dep.Spec.Template.Labels)
	}
	named := map[string]int32{}
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		named[p.Name] = p.ContainerPort
	}
	for _, p := range svc.Spec.Ports {
		tp := p.TargetPort
		if tp.StrVal != "" {
			if named[tp.StrVal] == 0 {
				t.Errorf("Service port %s targets %q, not a container port", p.Name, tp.StrVal)
			}
		} else if tp.IntVal != 0 && tp.IntVal != named["http"] {
			t.Errorf("Service port %s targets %d, the app listens on %d", p.Name, tp.IntVal, named["http"])
		}
	}
}
