// Package validate checks the manifests in images/ with Knative's own API code (Service) and the
// Kubernetes API types (Deployment, Service, PersistentVolumeClaim).
package validate

import (
	"bufio"
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"knative.dev/serving/pkg/apis/config"
	"sigs.k8s.io/yaml"
)

type intOrString = intstr.IntOrString

const featuresPrefix = "# knative-features:"

// parseFeaturesLine reads the one `# knative-features: k=v,k=v` comment line (none: stock flags).
func parseFeaturesLine(data []byte) (map[string]string, error) {
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), featuresPrefix); ok {
			found = append(found, strings.TrimSpace(rest))
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%d %q lines, want at most one", len(found), featuresPrefix)
	}
	flags := map[string]string{}
	for _, pair := range strings.Split(found[0], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%s %q: want key=value pairs separated by commas", featuresPrefix, pair)
		}
		if _, dup := flags[k]; dup {
			return nil, fmt.Errorf("%s names %s twice", featuresPrefix, k)
		}
		flags[k] = v
	}
	return flags, nil
}

// featuresFromMap builds Knative's Features from the named flags. Knative's own parser ignores
// unknown keys and values silently, so each pair must change the defaults, or it names nothing.
func featuresFromMap(flags map[string]string) (*config.Features, error) {
	defaults, err := config.NewFeaturesConfigFromMap(nil)
	if err != nil {
		return nil, err
	}
	for k, v := range flags {
		one, err := config.NewFeaturesConfigFromMap(map[string]string{k: v})
		if err != nil {
			return nil, fmt.Errorf("feature %s=%s: %v", k, v, err)
		}
		if reflect.DeepEqual(one, defaults) {
			return nil, fmt.Errorf("feature %s=%s changes nothing: not a Knative feature flag, not a valid value (enabled, disabled, allowed), or already the default", k, v)
		}
	}
	return config.NewFeaturesConfigFromMap(flags)
}

type manifestDoc struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	raw        []byte
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments cuts a multi-document YAML file and reads each document's apiVersion and kind.
func splitDocuments(data []byte) ([]manifestDoc, error) {
	var docs []manifestDoc
	for _, part := range docSeparator.Split(string(data), -1) {
		var probe map[string]any
		if err := yaml.Unmarshal([]byte(part), &probe); err != nil {
			return nil, err
		}
		if len(probe) == 0 {
			continue // only comments
		}
		d := manifestDoc{raw: []byte(part)}
		d.APIVersion, _ = probe["apiVersion"].(string)
		d.Kind, _ = probe["kind"].(string)
		if d.APIVersion == "" || d.Kind == "" {
			return nil, fmt.Errorf("a document without apiVersion/kind")
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// launcherGrace is knext-launch's --grace as the container's env sets it (KNEXT_GRACE), default
// 25 s; the same syntax as the launcher: ms, s, m, h, or a bare number of seconds.
func launcherGrace(env []corev1.EnvVar) (time.Duration, error) {
	for _, e := range env {
		if e.Name != "KNEXT_GRACE" {
			continue
		}
		if e.ValueFrom != nil {
			return 0, fmt.Errorf("KNEXT_GRACE from valueFrom: the grace must be readable in the manifest")
		}
		if n, err := strconv.ParseFloat(e.Value, 64); err == nil {
			return time.Duration(n * float64(time.Second)), nil
		}
		d, err := time.ParseDuration(e.Value)
		if err != nil {
			return 0, fmt.Errorf("KNEXT_GRACE=%q: %v", e.Value, err)
		}
		return d, nil
	}
	return 25 * time.Second, nil
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// checkCacheVolume: KNEXT_CACHE_DIR is a mounted, writable volume, and with a read-only root
// filesystem /tmp is one too (node and Next write temp files there).
func checkCacheVolume(t *testing.T, c corev1.Container, volumes []corev1.Volume) {
	t.Helper()
	dir := envValue(c.Env, "KNEXT_CACHE_DIR")
	if dir == "" {
		t.Error("KNEXT_CACHE_DIR unset: the compile cache has no writable volume")
		return
	}
	byName := map[string]corev1.Volume{}
	for _, v := range volumes {
		byName[v.Name] = v
	}
	mounted := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounted[m.MountPath] = m
	}
	for _, path := range []string{dir, "/tmp"} {
		m, ok := mounted[path]
		if !ok {
			t.Errorf("nothing mounted at %s", path)
			continue
		}
		if m.ReadOnly {
			t.Errorf("%s is mounted read-only", path)
		}
		v := byName[m.Name]
		if v.EmptyDir == nil && (v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ReadOnly) {
			t.Errorf("%s: volume %s is neither an emptyDir nor a writable claim", path, m.Name)
		}
	}
}
