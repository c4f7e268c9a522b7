package helm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/deployments/internal/kubeyaml"
)

// The release every test renders: `helm upgrade --install pingpong ./helm/pingpong -n pingpong`.
const (
	repoRoot    = "../.."
	chartDir    = repoRoot + "/helm/pingpong"
	releaseName = "pingpong"
	namespace   = "pingpong"
	// kubeVersion is the cluster `helm template` and `helm lint` render for: the oldest the
	// chart's kubeVersion allows would do, a current one is what users run.
	kubeVersion = "1.33.0"
)

// The chart is rendered by the helm binary, as users render it, rather than by Helm's Go
// packages, which would compile Helm, client-go and about a hundred more k8s.io packages into
// the suite (docs/testing.md).
const (
	installHelm4 = "go install helm.sh/helm/v4/cmd/helm@v4.3.2"
	installHelm3 = "GOBIN=$(mktemp -d) go install helm.sh/helm/v3/cmd/helm@v3.18.6, then move that helm to helm3 in your PATH"
)

// requireHelm finds the helm binary called name and checks that it is Helm major.x, at least
// major.minMinor; where it is missing or another version, the test is skipped as
// servicetest.RequireTool says (and fails in CI).
func requireHelm(t *testing.T, name string, major, minMinor int, install string) string {
	t.Helper()
	path := servicetest.RequireTool(t, name, install)
	out, err := exec.Command(path, "version", "--template", "{{.Version}}").Output()
	if err != nil {
		t.Fatalf("%s version: %v", name, err)
	}
	version := strings.TrimSpace(string(out))
	m := regexp.MustCompile(`^v(\d+)\.(\d+)`).FindStringSubmatch(version)
	if m == nil {
		t.Fatalf("%s version says %q", name, version)
	}
	gotMajor, _ := strconv.Atoi(m[1])
	gotMinor, _ := strconv.Atoi(m[2])
	if gotMajor != major || gotMinor < minMinor {
		msg := fmt.Sprintf("%s is Helm %s; this test needs Helm %d.%d or later of %d: %s", name, version, major, minMinor, major, install)
		if os.Getenv("CI") != "" || os.Getenv("PINGPONG_REQUIRE_TOOLS") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return path
}

// helm4 is the Helm 4 the tests render with.
func helm4(t *testing.T) string {
	t.Helper()
	return requireHelm(t, "helm", 4, 0, installHelm4)
}

// runHelm runs a helm command; the error holds what helm printed on stderr. Helm's warnings
// (a link in the chart, a deprecated flag) fail the run, since every user would see them.
func runHelm(t *testing.T, helm string, args ...string) ([]byte, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// No user configuration, repositories or plugins of the caller's.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	err := cmd.Run()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(helm), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if stderr.Len() > 0 {
		t.Errorf("%s %s printed on stderr:\n%s", filepath.Base(helm), strings.Join(args, " "), stderr.String())
	}
	return stdout.Bytes(), nil
}

// valuesFile writes the user's values to a file for helm -f.
func valuesFile(t *testing.T, userValues map[string]any) string {
	t.Helper()
	b, err := json.Marshal(userValues) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "values.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readValues reads a values file.
func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(b, &vals); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if vals == nil {
		vals = map[string]any{}
	}
	return vals
}

// defaultValues are the chart's values.yaml.
func defaultValues(t *testing.T) map[string]any {
	t.Helper()
	return readValues(t, filepath.Join(chartDir, "values.yaml"))
}

// merge merges src into dst, src winning, as `helm -f a.yaml -f b.yaml` does.
func merge(dst, src map[string]any) map[string]any {
	out := make(map[string]any, len(dst))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			if into, ok := out[k].(map[string]any); ok {
				out[k] = merge(into, sub)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// rendered is what `helm install --dry-run=client -o json` prints of a release (Helm 4's
// release JSON): the manifests, the hooks and the notes.
type rendered struct {
	Info struct {
		Notes string `json:"notes"`
	} `json:"info"`
	Manifest string `json:"manifest"`
	Hooks    []struct {
		Path     string `json:"path"`
		Manifest string `json:"manifest"`
	} `json:"hooks"`
}

var renders sync.Map // values JSON -> *renderResult

type renderResult struct {
	once sync.Once
	rel  *rendered
	err  error
}

// renderChart renders the chart with the user's values (on top of values.yaml) as
// `helm install --dry-run=client` does, schema check included. Renders of the same values are
// shared by the tests.
func renderChart(t *testing.T, userValues map[string]any) (*rendered, error) {
	t.Helper()
	helm := helm4(t)
	key, err := json.Marshal(userValues)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := renders.LoadOrStore(string(key), &renderResult{})
	res := v.(*renderResult)
	res.once.Do(func() {
		var out []byte
		out, res.err = runHelm(t, helm, "install", releaseName, chartDir, "-n", namespace,
			"--dry-run=client", "-o", "json", "-f", valuesFile(t, userValues))
		if res.err == nil {
			res.rel = &rendered{}
			if err := json.Unmarshal(out, res.rel); err != nil {
				res.err = fmt.Errorf("helm install --dry-run=client -o json printed no release: %w", err)
			}
		}
	})
	return res.rel, res.err
}

// object is one rendered manifest.
type object struct {
	file string
	meta metav1.TypeMeta
	obj  metav1.Object
}

// release is what the chart renders for one set of values, decoded into the Kubernetes API types.
type release struct {
	values map[string]any // the user's values merged over values.yaml
	notes  string
	all    []object

	deployment     *appsv1.Deployment
	job            *batchv1.Job
	service        *corev1.Service
	serviceAccount *corev1.ServiceAccount
	// hookServiceAccount is the topics hook's copy, with AWS_MSK_IAM.
	hookServiceAccount *corev1.ServiceAccount
	configMaps         map[string]*corev1.ConfigMap
	secrets            map[string]*corev1.Secret
	pdb                *policyv1.PodDisruptionBudget
	hpa                *autoscalingv2.HorizontalPodAutoscaler
	networkPolicy      *networkingv1.NetworkPolicy
	serviceMonitor     *monitoringv1.ServiceMonitor
	prometheusRule     *monitoringv1.PrometheusRule
	scaledObject       *scaledObject
	triggerAuth        *triggerAuthentication
}

// kinds are the kinds the chart may render, each with the type it must decode into.
var kinds = map[string]func() metav1.Object{
	"v1/ConfigMap":                            func() metav1.Object { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() metav1.Object { return &corev1.Secret{} },
	"v1/Service":                              func() metav1.Object { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() metav1.Object { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                      func() metav1.Object { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() metav1.Object { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() metav1.Object { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() metav1.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() metav1.Object { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() metav1.Object { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() metav1.Object { return &monitoringv1.PrometheusRule{} },
	"keda.sh/v1alpha1/ScaledObject":           func() metav1.Object { return &scaledObject{} },
	"keda.sh/v1alpha1/TriggerAuthentication":  func() metav1.Object { return &triggerAuthentication{} },
}

// render renders the chart and decodes every manifest strictly: an unknown field, a wrong type or
// an unknown kind fails the test, as the API server would refuse the object.
func render(t *testing.T, userValues map[string]any) *release {
	t.Helper()
	rel, err := renderChart(t, userValues)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	r := &release{
		values:     merge(defaultValues(t), userValues),
		notes:      rel.Info.Notes,
		configMaps: map[string]*corev1.ConfigMap{},
		secrets:    map[string]*corev1.Secret{},
	}
	docs := splitManifests(rel.Manifest)
	for _, h := range rel.Hooks {
		docs = append(docs, manifest{file: h.Path, text: h.Manifest})
	}
	sort.SliceStable(docs, func(i, j int) bool { return docs[i].file < docs[j].file })
	for _, doc := range docs {
		r.add(t, doc.file, doc.text)
	}
	if r.deployment == nil {
		t.Fatal("the chart rendered no Deployment")
	}
	return r
}

// manifest is one YAML document of a release, with the template it came from.
type manifest struct{ file, text string }

// splitManifests splits a release's manifest into its documents, each named by the
// "# Source: <template>" line Helm puts before it.
func splitManifests(all string) []manifest {
	var out []manifest
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(all, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		file := ""
		if m := regexp.MustCompile(`(?m)^# Source: (\S+)`).FindStringSubmatch(doc); m != nil {
			file = m[1]
		}
		out = append(out, manifest{file: file, text: doc})
	}
	return out
}

func (r *release) add(t *testing.T, file, manifest string) {
	t.Helper()
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(manifest), &meta); err != nil {
		t.Fatalf("%s: not YAML: %v\n%s", file, err, manifest)
	}
	newObj, ok := kinds[meta.APIVersion+"/"+meta.Kind]
	if !ok {
		t.Fatalf("%s: unexpected kind %s %s", file, meta.APIVersion, meta.Kind)
	}
	obj := newObj()
	if err := kubeyaml.DecodeStrict([]byte(manifest), obj); err != nil {
		t.Fatalf("%s: %s does not decode strictly into its API type: %v\n%s", file, meta.Kind, err, manifest)
	}
	for _, o := range r.all {
		if o.meta.Kind == meta.Kind && o.obj.GetName() == obj.GetName() && o.obj.GetNamespace() == obj.GetNamespace() {
			t.Fatalf("%s: two %s objects named %s", file, meta.Kind, obj.GetName())
		}
	}
	if obj.GetName() == "" || obj.GetNamespace() == "" {
		t.Errorf("%s: %s %q has no name or no namespace", file, meta.Kind, obj.GetName())
	}
	r.all = append(r.all, object{file: file, meta: meta, obj: obj})
	switch o := obj.(type) {
	case *appsv1.Deployment:
		setOnce(t, &r.deployment, o, file)
	case *batchv1.Job:
		setOnce(t, &r.job, o, file)
	case *corev1.Service:
		setOnce(t, &r.service, o, file)
	case *corev1.ServiceAccount:
		if _, hook := hookWeight(o); hook {
			setOnce(t, &r.hookServiceAccount, o, file)
		} else {
			setOnce(t, &r.serviceAccount, o, file)
		}
	case *corev1.ConfigMap:
		r.configMaps[o.Name] = o
	case *corev1.Secret:
		r.secrets[o.Name] = o
	case *policyv1.PodDisruptionBudget:
		setOnce(t, &r.pdb, o, file)
	case *autoscalingv2.HorizontalPodAutoscaler:
		setOnce(t, &r.hpa, o, file)
	case *networkingv1.NetworkPolicy:
		setOnce(t, &r.networkPolicy, o, file)
	case *monitoringv1.ServiceMonitor:
		setOnce(t, &r.serviceMonitor, o, file)
	case *monitoringv1.PrometheusRule:
		setOnce(t, &r.prometheusRule, o, file)
	case *scaledObject:
		setOnce(t, &r.scaledObject, o, file)
	case *triggerAuthentication:
		setOnce(t, &r.triggerAuth, o, file)
	}
}

// setOnce fills a slot for an object the chart renders at most once.
func setOnce[T any](t *testing.T, slot **T, obj *T, file string) {
	t.Helper()
	if *slot != nil {
		t.Fatalf("%s: a second %T", file, obj)
	}
	*slot = obj
}

// value reads a value by its dotted path, e.g. "topics.partitions".
func (r *release) value(t *testing.T, path string) any {
	t.Helper()
	var cur any = r.values
	for _, key := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("value %s: %v is not a map", path, cur)
		}
		if cur, ok = m[key]; !ok {
			t.Fatalf("value %s: no key %s", path, key)
		}
	}
	return cur
}

func (r *release) intValue(t *testing.T, path string) int {
	t.Helper()
	switch v := r.value(t, path).(type) {
	case float64:
		return int(v)
	case int:
		return v
	case int64:
		return int(v)
	default:
		t.Fatalf("value %s: %v (%T) is not a number", path, v, v)
		return 0
	}
}

// hookWeight is the helm.sh/hook-weight of a hook object, and whether it is a hook at all.
func hookWeight(obj metav1.Object) (string, bool) {
	if _, ok := obj.GetAnnotations()["helm.sh/hook"]; !ok {
		return "", false
	}
	return obj.GetAnnotations()["helm.sh/hook-weight"], true
}

// valuesFiles are the values files every test of the chart renders: ci/*.yaml (the defaults, and
// one that takes the other branches of the templates) and the production values.
func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci: %v", chartDir, err)
	}
	return append(files, filepath.Join(chartDir, "values-production.yaml"))
}

// readRepoFile reads a file of the repository, by its path from the repository's root.
func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\n")
}

// fromRoot is a path of the repository as its root sees it, for messages.
func fromRoot(path string) string {
	rel, err := filepath.Rel(repoRoot, path)
	if err != nil {
		return path
	}
	return rel
}
