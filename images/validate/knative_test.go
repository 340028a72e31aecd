package validate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/config"
	v1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// Knative's revision reconciler adds a preStop hook that waits for queue-proxy's drain, whose quiet
// period is fixed at 30 s (pkg/queue/sharedmain drainSleepDuration); only then does the user
// container get SIGTERM, and knext-launch gives node --grace.
const queueProxyDrainSeconds = 30

// knativeResult is what Knative's API code says about one Service, with the features given.
type knativeResult struct {
	svc      *v1.Service
	errors   *apis.FieldError
	warnings *apis.FieldError
}

func validateService(t *testing.T, doc []byte, features *config.Features) knativeResult {
	t.Helper()
	svc := &v1.Service{}
	if err := yaml.UnmarshalStrict(doc, svc); err != nil {
		t.Fatalf("strict decode into serving.knative.dev/v1 Service: %v", err)
	}
	ctx := config.ToContext(context.Background(), &config.Config{Features: features})
	ctx = apis.WithinCreate(ctx)
	svc.SetDefaults(ctx)
	all := svc.Validate(ctx)
	return knativeResult{svc: svc, errors: all.Filter(apis.ErrorLevel), warnings: all.Filter(apis.WarningLevel)}
}

type knativeManifest struct {
	path     string
	features map[string]string
	docs     []manifestDoc
}

func loadKnativeManifests(t *testing.T) []knativeManifest {
	t.Helper()
	paths, err := filepath.Glob("../knative/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in images/knative (%v)", err)
	}
	var out []knativeManifest
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		features, err := parseFeaturesLine(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		docs, err := splitDocuments(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, knativeManifest{path: p, features: features, docs: docs})
	}
	return out
}

func (m knativeManifest) services(t *testing.T) [][]byte {
	t.Helper()
	var svcs [][]byte
	for _, d := range m.docs {
		if d.APIVersion == "serving.knative.dev/v1" && d.Kind == "Service" {
			svcs = append(svcs, d.raw)
		}
	}
	if len(svcs) == 0 {
		t.Fatalf("%s has no serving.knative.dev/v1 Service", m.path)
	}
	return svcs
}

func TestKnativeServicesPassKnativeValidation(t *testing.T) {
	for _, m := range loadKnativeManifests(t) {
		t.Run(filepath.Base(m.path), func(t *testing.T) {
			features, err := featuresFromMap(m.features)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range m.docs {
				switch {
				case d.APIVersion == "serving.knative.dev/v1" && d.Kind == "Service":
					r := validateService(t, d.raw, features)
					if r.errors != nil {
						t.Errorf("Knative validation errors (features %v):\n%v", m.features, r.errors)
					}
					if r.warnings != nil {
						t.Errorf("Knative validation warnings (features %v):\n%v", m.features, r.warnings)
					}
					checkGateContract(t, r.svc)
				case d.APIVersion == "v1" && d.Kind == "PersistentVolumeClaim":
					checkSharedClaim(t, d.raw)
				default:
					t.Errorf("unexpected object %s %s", d.APIVersion, d.Kind)
				}
			}
		})
	}
}

// A Service that needs flags must be refused on a stock Knative: the line is not decoration.
func TestFlaggedServicesAreRejectedWithStockFlags(t *testing.T) {
	stock, err := featuresFromMap(nil)
	if err != nil {
		t.Fatal(err)
	}
	flagged := 0
	for _, m := range loadKnativeManifests(t) {
		if len(m.features) == 0 {
			continue
		}
		flagged++
		t.Run(filepath.Base(m.path), func(t *testing.T) {
			for _, doc := range m.services(t) {
				r := validateService(t, doc, stock)
				if r.errors == nil {
					t.Fatalf("passes with stock flags, though it names %v", m.features)
				}
				if _, pvc := m.features["kubernetes.podspec-persistent-volume-claim"]; pvc &&
					!strings.Contains(r.errors.Error(), "Persistent volume claim support is disabled") {
					t.Errorf("rejected, but not for its claim:\n%v", r.errors)
				}
			}
		})
	}
	if flagged == 0 {
		t.Fatal("no manifest in images/knative names feature flags (the PVC Service should)")
	}
}

// The warning check can fail: the stock Service without its securityContext draws Knative's
// warnings for each of the four fields.
func TestMissingSecurityContextDrawsKnativeWarnings(t *testing.T) {
	data, err := os.ReadFile("../knative/service.yaml")
	if err != nil {
		t.Fatal(err)
	}
	features, _ := featuresFromMap(nil)
	r := validateService(t, data, features)
	r.svc.Spec.Template.Spec.Containers[0].SecurityContext = nil
	ctx := apis.WithinCreate(config.ToContext(context.Background(), &config.Config{Features: features}))
	warnings := r.svc.Validate(ctx).Filter(apis.WarningLevel)
	if warnings == nil {
		t.Fatal("no warnings without a securityContext")
	}
	for _, field := range []string{"runAsNonRoot", "allowPrivilegeEscalation", "seccompProfile", "capabilities"} {
		if !strings.Contains(warnings.Error(), field) {
			t.Errorf("no warning about %s:\n%v", field, warnings)
		}
	}
}

// checkGateContract: what knext-launch's readiness gate and shutdown need from the Service.
func checkGateContract(t *testing.T, svc *v1.Service) {
	t.Helper()
	spec := svc.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort == 0 {
		t.Errorf("want one containerPort, got %v", c.Ports)
	}
	userPort := int32(8080)
	if len(c.Ports) > 0 && c.Ports[0].ContainerPort != 0 {
		userPort = c.Ports[0].ContainerPort
	}
	rp := c.ReadinessProbe
	switch {
	case rp == nil || rp.TCPSocket == nil:
		t.Errorf("readinessProbe must be tcpSocket (the gate refuses connections until warm), got %+v", rp)
	case rp.PeriodSeconds != 0:
		t.Errorf("readinessProbe.periodSeconds must be unset (aggressive probing), got %d", rp.PeriodSeconds)
	case rp.TCPSocket.Port.IntVal != 0 && rp.TCPSocket.Port.IntVal != userPort:
		t.Errorf("readinessProbe on port %v, the user port is %d", rp.TCPSocket.Port.String(), userPort)
	}
	if c.StartupProbe != nil {
		t.Error("startupProbe turns off Knative's aggressive readiness probing")
	}
	// Without multi-container-probing the reconciler rewrites a liveness port to the user port.
	if lp := c.LivenessProbe; lp == nil {
		t.Error("no livenessProbe")
	} else if port := probePort(lp); port.IntVal != userPort && port.StrVal == "" {
		t.Errorf("livenessProbe on port %s: Knative rewrites it to the user port %d", port.String(), userPort)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() ||
		c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources need cpu/memory requests and a memory limit, got %v", c.Resources)
	}
	ann := svc.Spec.Template.Annotations
	for _, k := range []string{"autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/max-scale"} {
		if _, ok := ann[k]; !ok {
			t.Errorf("template annotation %s missing", k)
		}
	}
	grace, err := launcherGrace(c.Env)
	if err != nil {
		t.Fatal(err)
	}
	if spec.TimeoutSeconds == nil {
		t.Fatal("timeoutSeconds unset after SetDefaults")
	}
	if need := int64(queueProxyDrainSeconds) + int64(grace.Seconds()) + 1; *spec.TimeoutSeconds < need {
		t.Errorf("timeoutSeconds %d (= terminationGracePeriodSeconds) < %d s drain + %v grace + 1 s: the kubelet would SIGKILL mid-drain",
			*spec.TimeoutSeconds, queueProxyDrainSeconds, grace)
	}
	checkCacheVolume(t, c, spec.Volumes)
	if sc := c.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("securityContext: want a non-root runAsUser (the image's) and readOnlyRootFilesystem")
	}
}

func probePort(p *corev1.Probe) (port intOrString) {
	switch {
	case p.TCPSocket != nil:
		return p.TCPSocket.Port
	case p.HTTPGet != nil:
		return p.HTTPGet.Port
	}
	return port
}

func checkSharedClaim(t *testing.T, doc []byte) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	if err := yaml.UnmarshalStrict(doc, pvc); err != nil {
		t.Fatalf("strict decode into v1 PersistentVolumeClaim: %v", err)
	}
	if len(pvc.Spec.AccessModes) != 1 || pvc.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Errorf("claim %s: accessModes %v, want [ReadWriteMany] (a ReadWriteOnce claim strands pods on other nodes)",
			pvc.Name, pvc.Spec.AccessModes)
	}
}

// The features line is read by tools too: a misspelt flag or value must not pass as "stock".
func TestFeaturesLineNamesRealFlags(t *testing.T) {
	for _, bad := range []string{
		"# knative-features: kubernetes.podspec-persistent-volume-clam=enabled",
		"# knative-features: kubernetes.podspec-persistent-volume-claim=on",
		"# knative-features: kubernetes.podspec-persistent-volume-claim",
		"# knative-features: kubernetes.podspec-volumes-emptydir=enabled", // already the default
	} {
		flags, err := parseFeaturesLine([]byte(bad + "\n"))
		if err == nil {
			_, err = featuresFromMap(flags)
		}
		if err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	flags, err := parseFeaturesLine([]byte("# knative-features: kubernetes.podspec-persistent-volume-claim=Enabled\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := featuresFromMap(flags)
	if err != nil || f.PodSpecPersistentVolumeClaim != config.Enabled {
		t.Errorf("PodSpecPersistentVolumeClaim = %v (%v)", f, err)
	}
}
