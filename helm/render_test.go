package helm_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The release every test renders: `helm upgrade --install pingpong ./helm/pingpong -n pingpong`.
const (
	chartDir    = "pingpong"
	releaseName = "pingpong"
	namespace   = "pingpong"
	// kubeVersion is the cluster the chart is rendered for: the oldest its kubeVersion allows
	// would do, a current one is what users run.
	kubeVersion = "v1.33.0"
)

var (
	chartOnce   sync.Once
	loadedChart *chart.Chart
	chartErr    error
)

// pingpongChart loads the chart once, as `helm install` does.
func pingpongChart(t *testing.T) *chart.Chart {
	t.Helper()
	chartOnce.Do(func() { loadedChart, chartErr = loader.Load(chartDir) })
	if chartErr != nil {
		t.Fatalf("loading the chart: %v", chartErr)
	}
	return loadedChart
}

// readValues reads a values file.
func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	vals, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return vals.AsMap()
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

// renderChart renders the chart with the user's values (on top of values.yaml) as
// `helm template` does, with the schema check, and in strict mode: a template that reads a
// value the values do not have is an error, not an empty string.
func renderChart(t *testing.T, userValues map[string]any) (map[string]string, error) {
	t.Helper()
	chrt := pingpongChart(t)
	caps := chartutil.DefaultCapabilities.Copy()
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	if !chartutil.IsCompatibleRange(chrt.Metadata.KubeVersion, kubeVersion) {
		t.Fatalf("the chart's kubeVersion %q does not allow %s, the version the tests render for", chrt.Metadata.KubeVersion, kubeVersion)
	}
	top, err := chartutil.ToRenderValues(chrt, userValues, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(chrt, top)
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
	configMaps     map[string]*corev1.ConfigMap
	secrets        map[string]*corev1.Secret
	pdb            *policyv1.PodDisruptionBudget
	hpa            *autoscalingv2.HorizontalPodAutoscaler
	networkPolicy  *networkingv1.NetworkPolicy
	serviceMonitor *monitoringv1.ServiceMonitor
	prometheusRule *monitoringv1.PrometheusRule
	scaledObject   *scaledObject
	triggerAuth    *triggerAuthentication
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
	files, err := renderChart(t, userValues)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	r := &release{
		values:     merge(pingpongChart(t).Values, userValues),
		configMaps: map[string]*corev1.ConfigMap{},
		secrets:    map[string]*corev1.Secret{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = files[name]
			continue
		}
		for _, manifest := range releaseutil.SplitManifests(files[name]) {
			if strings.TrimSpace(manifest) == "" {
				continue
			}
			r.add(t, name, manifest)
		}
	}
	if r.deployment == nil {
		t.Fatal("the chart rendered no Deployment")
	}
	return r
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
	if err := decodeStrict([]byte(manifest), obj); err != nil {
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
		setOnce(t, &r.serviceAccount, o, file)
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

// decodeStrict decodes a YAML document as the API server does: field names are case-sensitive,
// and an unknown or duplicate field is an error (sigs.k8s.io/yaml's UnmarshalStrict would let
// topologykey stand for topologyKey).
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
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

// readRepoFile reads a file of the repository, relative to this package.
func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\n")
}
