// Package helm_test renders the Helm chart helm/pingpong with the helm binary (Helm 4, schema
// check included, and Helm 3 for comparison), decodes every manifest strictly into the
// Kubernetes API types, and checks what a cluster and the service need of them.
package helm_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/telemetry"
)

// TestChart renders every values file of ci/ (the defaults, the production values, and the
// other branches) and checks each release.
func TestChart(t *testing.T) {
	for _, file := range valuesFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := render(t, readValues(t, file))
			t.Run("selectors", func(t *testing.T) { checkSelectors(t, r) })
			t.Run("probes and ports", func(t *testing.T) { checkProbesAndPorts(t, r) })
			t.Run("security", func(t *testing.T) { checkSecurity(t, r) })
			t.Run("environment", func(t *testing.T) { checkEnvironment(t, r) })
			t.Run("shutdown", func(t *testing.T) { checkShutdown(t, r) })
			t.Run("topics hook", func(t *testing.T) { checkTopicsHook(t, r) })
			t.Run("availability and scaling", func(t *testing.T) { checkScaling(t, r) })
			t.Run("network policy", func(t *testing.T) { checkNetworkPolicy(t, r) })
			t.Run("monitoring", func(t *testing.T) { checkMonitoring(t, r) })
			t.Run("notes", func(t *testing.T) { checkNotes(t, r) })
		})
	}
}

// TestProductionValuesTurnEverythingOn: values-production.yaml is the reference setup, with
// every optional part of the chart on.
func TestProductionValuesTurnEverythingOn(t *testing.T) {
	r := render(t, readValues(t, filepath.Join(chartDir, "values-production.yaml")))
	for name, present := range map[string]bool{
		"ServiceMonitor":          r.serviceMonitor != nil,
		"PrometheusRule":          r.prometheusRule != nil,
		"Grafana dashboard":       r.configMaps[r.deployment.Name+"-dashboard"] != nil,
		"PodDisruptionBudget":     r.pdb != nil,
		"KEDA ScaledObject":       r.scaledObject != nil,
		"TriggerAuthentication":   r.triggerAuth != nil,
		"NetworkPolicy":           r.networkPolicy != nil,
		"topics hook Job":         r.job != nil,
		"TLS (a CA file)":         r.env(t, r.deployment.Spec.Template.Spec.Containers[0])["KAFKA_TLS_CA_FILE"] != "",
		"SASL (a password file)":  r.env(t, r.deployment.Spec.Template.Spec.Containers[0])["KAFKA_SASL_PASSWORD_FILE"] != "",
		"replication factor 3":    r.intValue(t, "topics.replicationFactor") == 3,
		"min.insync.replicas 2":   r.intValue(t, "topics.minInsyncReplicas") == 2,
		"spread required by node": spreadOver(r, "kubernetes.io/hostname") == corev1.DoNotSchedule,
		"spread over zones":       spreadOver(r, "topology.kubernetes.io/zone") != "",
		"tracing":                 r.env(t, r.deployment.Spec.Template.Spec.Containers[0])["OTEL_EXPORTER_OTLP_ENDPOINT"] != "",
	} {
		if !present {
			t.Errorf("values-production.yaml: no %s", name)
		}
	}
	if r.hpa != nil {
		t.Error("values-production.yaml: a HorizontalPodAutoscaler beside KEDA's")
	}
}

// spreadOver is how the pods are spread over a topology key; empty when they are not.
func spreadOver(r *release, key string) corev1.UnsatisfiableConstraintAction {
	for _, c := range r.deployment.Spec.Template.Spec.TopologySpreadConstraints {
		if c.TopologyKey == key {
			return c.WhenUnsatisfiable
		}
	}
	return ""
}

// TestDefaultsMatchTheService: where the chart writes a setting the service also has a default
// for, the two agree, unless the chart means to differ (listed here with the reason). A changed
// default in the service then shows up here instead of silently not applying on Kubernetes.
func TestDefaultsMatchTheService(t *testing.T) {
	intended := map[string]string{
		"KAFKA_BROKERS": "the service embeds a development broker without it; on Kubernetes it is the cluster's Kafka",
		"LOG_FORMAT":    "json for the cluster's log collector; text is for a terminal",
	}
	r := render(t, nil)
	data := r.configMaps[r.deployment.Name].Data
	defaults := serviceDefaults()
	for name, value := range data {
		def, ok := defaults[name]
		if !ok {
			t.Errorf("the ConfigMap sets %s, which the service does not read", name)
			continue
		}
		if _, ok := intended[name]; ok {
			continue
		}
		if !sameSetting(def, value) {
			t.Errorf("%s: the chart's default %q differs from the service's %q; change values.yaml (or list the difference as intended)", name, value, def)
		}
	}
	for name := range intended {
		if sameSetting(defaults[name], data[name]) {
			t.Errorf("%s is listed as intentionally different, but the chart and the service agree (%q)", name, data[name])
		}
	}
}

// serviceDefaults are the service's default settings, by environment variable.
func serviceDefaults() map[string]string {
	fs := newServiceFlags()
	defaults := map[string]string{}
	for _, env := range config.ServiceEnvNames() {
		defaults[env] = fs.Lookup(config.FlagName(env)).DefValue
	}
	return defaults
}

// kafkaEnvNames are the settings every command shares to reach the cluster (config.Kafka).
func kafkaEnvNames() []string {
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	var k config.Kafka
	k.AddFlags(fs)
	return config.EnvNames(fs)
}

// newServiceFlags registers the service's settings, as the pingpong command does.
func newServiceFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	var s config.Service
	s.Kafka.AddFlags(fs)
	s.Logging.AddFlags(fs)
	s.AddFlags(fs)
	return fs
}

// sameSetting compares two values of a setting as the service reads them: 1m and 1m0s, or 2
// and 2.0, are the same.
func sameSetting(a, b string) bool {
	if a == b {
		return true
	}
	if da, err := time.ParseDuration(a); err == nil {
		db, err := time.ParseDuration(b)
		return err == nil && da == db
	}
	if fa, err := strconv.ParseFloat(a, 64); err == nil {
		fb, err := strconv.ParseFloat(b, 64)
		return err == nil && fa == fb
	}
	return false
}

func checkSelectors(t *testing.T, r *release) {
	pods := labels.Set(r.deployment.Spec.Template.Labels)
	selects := func(what string, sel *metav1.LabelSelector, set labels.Set) {
		t.Helper()
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if s.Empty() {
			t.Errorf("%s selects everything", what)
		}
		if !s.Matches(set) {
			t.Errorf("%s (%s) does not select the pods (%v)", what, s, set)
		}
	}
	selects("the Deployment's selector", r.deployment.Spec.Selector, pods)
	selects("the Service's selector", metav1.SetAsLabelSelector(r.service.Spec.Selector), pods)
	if r.job != nil {
		jobPods := labels.Set(r.job.Spec.Template.Labels)
		for what, sel := range map[string]*metav1.LabelSelector{
			"the Deployment's selector": r.deployment.Spec.Selector,
			"the Service's selector":    metav1.SetAsLabelSelector(r.service.Spec.Selector),
		} {
			s, _ := metav1.LabelSelectorAsSelector(sel)
			if s.Matches(jobPods) {
				t.Errorf("%s selects the topics Job's pods too", what)
			}
		}
	}
	if r.pdb != nil {
		selects("the PodDisruptionBudget's selector", r.pdb.Spec.Selector, pods)
	}
	for _, c := range r.deployment.Spec.Template.Spec.TopologySpreadConstraints {
		selects("the topology spread constraint on "+c.TopologyKey, c.LabelSelector, pods)
	}
	if r.serviceMonitor != nil {
		selects("the ServiceMonitor's selector", &r.serviceMonitor.Spec.Selector, labels.Set(r.service.Labels))
		if !slices.Contains(r.serviceMonitor.Spec.NamespaceSelector.MatchNames, r.service.Namespace) {
			t.Errorf("the ServiceMonitor looks in %v, the Service is in %s", r.serviceMonitor.Spec.NamespaceSelector.MatchNames, r.service.Namespace)
		}
		if _, ok := r.service.Labels[r.serviceMonitor.Spec.JobLabel]; !ok {
			t.Errorf("the ServiceMonitor takes the job label from the Service's %q label, which it lacks", r.serviceMonitor.Spec.JobLabel)
		}
	}
	if r.networkPolicy != nil {
		selects("the NetworkPolicy's pod selector", &r.networkPolicy.Spec.PodSelector, pods)
		if r.job != nil {
			selects("the NetworkPolicy's pod selector", &r.networkPolicy.Spec.PodSelector, labels.Set(r.job.Spec.Template.Labels))
		}
	}
	for what, ref := range map[string]string{
		"HorizontalPodAutoscaler": func() string {
			if r.hpa == nil {
				return ""
			}
			return r.hpa.Spec.ScaleTargetRef.Kind + "/" + r.hpa.Spec.ScaleTargetRef.Name
		}(),
		"ScaledObject": func() string {
			if r.scaledObject == nil {
				return ""
			}
			return r.scaledObject.Spec.ScaleTargetRef.Kind + "/" + r.scaledObject.Spec.ScaleTargetRef.Name
		}(),
	} {
		if ref != "" && ref != "Deployment/"+r.deployment.Name {
			t.Errorf("the %s scales %s, not the Deployment %s", what, ref, r.deployment.Name)
		}
	}
	if sa := r.deployment.Spec.Template.Spec.ServiceAccountName; r.serviceAccount != nil && sa != r.serviceAccount.Name {
		t.Errorf("the pods run as ServiceAccount %q, the chart creates %q", sa, r.serviceAccount.Name)
	}
}

func checkProbesAndPorts(t *testing.T, r *release) {
	c := r.deployment.Spec.Template.Spec.Containers[0]
	env := r.env(t, c)
	_, port, err := net.SplitHostPort(env["HTTP_ADDR"])
	if err != nil {
		t.Fatalf("HTTP_ADDR %q: %v", env["HTTP_ADDR"], err)
	}
	var http *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "http" {
			http = &c.Ports[i]
		}
	}
	if http == nil {
		t.Fatalf("the container has no port named http: %+v", c.Ports)
	}
	if strconv.Itoa(int(http.ContainerPort)) != port {
		t.Errorf("the http port is %d, the service listens on HTTP_ADDR %s", http.ContainerPort, env["HTTP_ADDR"])
	}
	for name, probe := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{
		"liveness":  {c.LivenessProbe, "/healthz"},
		"readiness": {c.ReadinessProbe, "/readyz"},
		"startup":   {c.StartupProbe, "/healthz"},
	} {
		if probe.probe == nil {
			t.Errorf("no %s probe", name)
			continue
		}
		get := probe.probe.HTTPGet
		if get == nil || get.Path != probe.path || get.Port != intstr.FromString("http") {
			t.Errorf("the %s probe is %+v, want GET %s on port http", name, probe.probe.ProbeHandler, probe.path)
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.SuccessThreshold != 1 {
		t.Errorf("liveness successThreshold %d: Kubernetes accepts only 1", c.LivenessProbe.SuccessThreshold)
	}
	if len(r.service.Spec.Ports) != 1 || r.service.Spec.Ports[0].TargetPort != intstr.FromString("http") || r.service.Spec.Ports[0].Name != "http" {
		t.Errorf("the Service's ports are %+v, want one named http to the container's http port", r.service.Spec.Ports)
	}
}

func checkSecurity(t *testing.T, r *release) {
	pods := map[string]corev1.PodSpec{"Deployment": r.deployment.Spec.Template.Spec}
	if r.job != nil {
		pods["Job"] = r.job.Spec.Template.Spec
	}
	for what, pod := range pods {
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: the pods mount a ServiceAccount token, which they never use", what)
		}
		psc := pod.SecurityContext
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: the pod's seccomp profile is not RuntimeDefault: %+v", what, psc)
		}
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("%s: the pod may run as root", what)
		}
		for _, c := range pod.Containers {
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s/%s: no security context", what, c.Name)
				continue
			case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
				t.Errorf("%s/%s: may run as root", what, c.Name)
			case sc.RunAsUser == nil || *sc.RunAsUser != 65532:
				t.Errorf("%s/%s: runs as %v, the image's user is 65532", what, c.Name, sc.RunAsUser)
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Errorf("%s/%s: the root filesystem is writable", what, c.Name)
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s/%s: privilege escalation is allowed", what, c.Name)
			case sc.Privileged != nil && *sc.Privileged:
				t.Errorf("%s/%s: privileged", what, c.Name)
			case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
				t.Errorf("%s/%s: capabilities %+v, want all dropped and none added", what, c.Name, sc.Capabilities)
			case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Errorf("%s/%s: the seccomp profile is not RuntimeDefault", what, c.Name)
			}
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s/%s: no memory request or limit: %+v", what, c.Name, c.Resources)
			}
			if !strings.Contains(c.Image, "pingpong") || !(strings.Contains(c.Image, ":") || strings.Contains(c.Image, "@sha256:")) {
				t.Errorf("%s/%s: image %q has no tag or digest", what, c.Name, c.Image)
			}
		}
	}
}

// goRuntimeEnv are the variables the Go runtime reads, which extraEnv may set beside the service's.
var goRuntimeEnv = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG", "GOTRACEBACK"}

func checkEnvironment(t *testing.T, r *release) {
	known := append(config.ServiceEnvNames(), telemetry.EnvNames()...)
	var extra []string
	for _, e := range r.value(t, "extraEnv").([]any) {
		extra = append(extra, e.(map[string]any)["name"].(string))
	}
	containers := map[string]corev1.Container{"Deployment": r.deployment.Spec.Template.Spec.Containers[0]}
	pods := map[string]corev1.PodSpec{"Deployment": r.deployment.Spec.Template.Spec}
	if r.job != nil {
		containers["Job"] = r.job.Spec.Template.Spec.Containers[0]
		pods["Job"] = r.job.Spec.Template.Spec
	}
	for what, c := range containers {
		env := r.env(t, c)
		for name := range env {
			if slices.Contains(known, name) {
				continue
			}
			if slices.Contains(extra, name) && slices.Contains(goRuntimeEnv, name) {
				continue
			}
			t.Errorf("%s: sets %s, which the service does not read (config.ServiceEnvNames: %v)", what, name, known)
		}
		checkFiles(t, what, env, c, pods[what])
		// The OTEL_ values are ones the service takes (it would exit 2 on any other).
		if err := telemetry.Check(func(name string) string { return env[name] }); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	// The hook reaches the cluster exactly as the service does: the same settings of
	// config.Kafka (brokers, topic prefix, timeout, TLS, SASL), and none of the service's own.
	if r.job != nil {
		svc, job := r.env(t, containers["Deployment"]), r.env(t, containers["Job"])
		connection := kafkaEnvNames()
		for name, value := range svc {
			if slices.Contains(connection, name) && job[name] != value {
				t.Errorf("%s: the service has %q, the topics Job %q", name, value, job[name])
			}
		}
		for name := range job {
			if strings.HasPrefix(name, "KAFKA_") && !slices.Contains(connection, name) {
				t.Errorf("the topics Job sets %s, which is not a setting of the connection to the cluster", name)
			}
			if strings.HasPrefix(name, "KAFKA_") && svc[name] == "" {
				t.Errorf("the topics Job sets %s, the service does not", name)
			}
		}
	}
}

// checkFiles checks that every *_FILE setting names a file that a volume of the pod provides:
// a mounted Secret with that key.
func checkFiles(t *testing.T, what string, env map[string]string, c corev1.Container, pod corev1.PodSpec) {
	for name, file := range env {
		if !strings.HasSuffix(name, "_FILE") {
			continue
		}
		dir, base := path.Split(file)
		var mount *corev1.VolumeMount
		for i := range c.VolumeMounts {
			if path.Clean(c.VolumeMounts[i].MountPath) == path.Clean(dir) {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil {
			t.Errorf("%s: %s=%s, but nothing is mounted at %s", what, name, file, dir)
			continue
		}
		found := false
		for _, v := range pod.Volumes {
			if v.Name != mount.Name || v.Secret == nil {
				continue
			}
			for _, item := range v.Secret.Items {
				found = found || item.Path == base
			}
		}
		if !found {
			t.Errorf("%s: %s=%s, but the Secret mounted at %s has no item %s", what, name, file, dir, base)
		}
		if !mount.ReadOnly {
			t.Errorf("%s: the secret at %s is mounted writable", what, dir)
		}
	}
}

// env resolves the environment of a container: its ConfigMaps and Secrets (the rendered ones;
// an existing Secret the chart only names becomes "<secret>/<key>").
func (r *release) env(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Fatalf("%s: envFrom other than a ConfigMap: %+v", c.Name, from)
		}
		cm, ok := r.configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Fatalf("%s: envFrom ConfigMap %s, which the chart does not render", c.Name, from.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		if _, twice := env[e.Name]; twice {
			t.Errorf("%s: %s is set twice", c.Name, e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if s, ok := r.secrets[ref.Name]; ok {
				v, ok := s.Data[ref.Key]
				if !ok {
					t.Errorf("%s: %s reads key %s of Secret %s, which has no such key", c.Name, e.Name, ref.Key, ref.Name)
				}
				env[e.Name] = string(v)
			} else {
				env[e.Name] = ref.Name + "/" + ref.Key
			}
		default:
			b, _ := json.Marshal(e.ValueFrom)
			env[e.Name] = string(b)
		}
	}
	return env
}

func checkShutdown(t *testing.T, r *release) {
	pod := r.deployment.Spec.Template.Spec
	timeout, err := time.ParseDuration(r.env(t, pod.Containers[0])["SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("SHUTDOWN_TIMEOUT: %v", err)
	}
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds")
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	if grace <= timeout {
		t.Errorf("terminationGracePeriodSeconds %v is not above SHUTDOWN_TIMEOUT %v: Kubernetes would kill pods still finishing their requests", grace, timeout)
	}
	want := r.intValue(t, "config.shutdownTimeoutSeconds") + r.intValue(t, "terminationGracePeriodMarginSeconds")
	if int(grace.Seconds()) != want {
		t.Errorf("terminationGracePeriodSeconds is %v, want config.shutdownTimeoutSeconds + terminationGracePeriodMarginSeconds = %ds", grace, want)
	}
	if s := r.deployment.Spec.Strategy; s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("the rollout may take pods down before new ones are ready: %+v", s)
	}
}

func checkTopicsHook(t *testing.T, r *release) {
	if r.job == nil {
		if r.value(t, "topics.create") == true {
			t.Fatal("topics.create is true but no Job is rendered")
		}
		return
	}
	job := r.job
	hooks := strings.Split(job.Annotations["helm.sh/hook"], ",")
	if !slices.Contains(hooks, "pre-install") || !slices.Contains(hooks, "pre-upgrade") {
		t.Errorf("the Job runs at %v, want pre-install and pre-upgrade", hooks)
	}
	if got := job.Annotations["helm.sh/hook-delete-policy"]; got != "before-hook-creation,hook-succeeded" {
		t.Errorf("hook-delete-policy %q, want before-hook-creation,hook-succeeded", got)
	}
	if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit < 1 {
		t.Errorf("backoffLimit %v: a transient failure would fail the install", job.Spec.BackoffLimit)
	}
	if job.Spec.ActiveDeadlineSeconds == nil || *job.Spec.ActiveDeadlineSeconds < 1 {
		t.Error("no activeDeadlineSeconds: an unreachable cluster would hang the install")
	}
	pod := job.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"topics", "create"}) || len(c.Command) > 0 {
		t.Errorf("the Job runs %v %v, want the image's entrypoint with topics create", c.Command, c.Args)
	}
	env := r.env(t, c)
	for name, path := range map[string]string{
		"TOPIC_PARTITIONS":          "topics.partitions",
		"TOPIC_REPLICATION_FACTOR":  "topics.replicationFactor",
		"TOPIC_MIN_INSYNC_REPLICAS": "topics.minInsyncReplicas",
	} {
		if want := strconv.Itoa(r.intValue(t, path)); env[name] != want {
			t.Errorf("%s=%q, want %s (%s)", name, env[name], want, path)
		}
	}
	// A pre-install hook runs before the release's objects exist: whatever it reads must be a
	// hook created before it, or exist outside the release.
	jobWeight, _ := hookWeight(job)
	var refs []string
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs = append(refs, "Secret/"+e.ValueFrom.SecretKeyRef.Name)
		}
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			refs = append(refs, "ConfigMap/"+e.ValueFrom.ConfigMapKeyRef.Name)
		}
	}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			refs = append(refs, "ConfigMap/"+from.ConfigMapRef.Name)
		}
		if from.SecretRef != nil {
			refs = append(refs, "Secret/"+from.SecretRef.Name)
		}
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			refs = append(refs, "Secret/"+v.Secret.SecretName)
		}
		if v.ConfigMap != nil {
			refs = append(refs, "ConfigMap/"+v.ConfigMap.Name)
		}
	}
	if pod.ServiceAccountName != "" && pod.ServiceAccountName != "default" {
		refs = append(refs, "ServiceAccount/"+pod.ServiceAccountName)
	}
	for _, ref := range refs {
		for _, o := range r.all {
			if o.meta.Kind+"/"+o.obj.GetName() != ref {
				continue
			}
			weight, isHook := hookWeight(o.obj)
			if !isHook {
				t.Errorf("the topics Job uses %s, which the release creates only after the pre-install hooks", ref)
				continue
			}
			if w, j := atoi(weight), atoi(jobWeight); w >= j {
				t.Errorf("the topics Job (weight %d) uses %s (weight %d), which must come first", j, ref, w)
			}
			if o.obj.GetAnnotations()["helm.sh/hook"] != job.Annotations["helm.sh/hook"] {
				t.Errorf("%s runs at %q, the Job at %q", ref, o.obj.GetAnnotations()["helm.sh/hook"], job.Annotations["helm.sh/hook"])
			}
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func checkScaling(t *testing.T, r *release) {
	partitions := r.intValue(t, "topics.partitions")
	minReplicas := 0
	switch {
	case r.scaledObject != nil && r.hpa != nil:
		t.Fatal("both a KEDA ScaledObject and a HorizontalPodAutoscaler")
	case r.scaledObject != nil:
		so := r.scaledObject.Spec
		if so.MinReplicaCount == nil || so.MaxReplicaCount == nil {
			t.Fatal("the ScaledObject has no minReplicaCount or maxReplicaCount")
		}
		minReplicas = int(*so.MinReplicaCount)
		if int(*so.MaxReplicaCount) > partitions {
			t.Errorf("the ScaledObject goes up to %d replicas, above the %d partitions", *so.MaxReplicaCount, partitions)
		}
		checkLagTrigger(t, r)
	case r.hpa != nil:
		if r.hpa.Spec.MinReplicas == nil {
			t.Fatal("the HorizontalPodAutoscaler has no minReplicas")
		}
		minReplicas = int(*r.hpa.Spec.MinReplicas)
		if int(r.hpa.Spec.MaxReplicas) > partitions {
			t.Errorf("the HorizontalPodAutoscaler goes up to %d replicas, above the %d partitions", r.hpa.Spec.MaxReplicas, partitions)
		}
		if minReplicas > int(r.hpa.Spec.MaxReplicas) {
			t.Errorf("the HorizontalPodAutoscaler's minReplicas %d is above its maxReplicas %d", minReplicas, r.hpa.Spec.MaxReplicas)
		}
		if len(r.hpa.Spec.Metrics) == 0 {
			t.Error("the HorizontalPodAutoscaler has no metric")
		}
	default:
		if r.deployment.Spec.Replicas == nil {
			t.Fatal("no autoscaler and no replica count")
		}
		minReplicas = int(*r.deployment.Spec.Replicas)
		if minReplicas > partitions {
			t.Errorf("%d replicas for %d partitions", minReplicas, partitions)
		}
	}
	if (r.scaledObject != nil || r.hpa != nil) && r.deployment.Spec.Replicas != nil {
		t.Error("the Deployment sets replicas beside an autoscaler: every upgrade would reset the scale")
	}
	if r.pdb == nil {
		return
	}
	pdb := r.pdb.Spec
	switch {
	case pdb.MinAvailable != nil && pdb.MaxUnavailable != nil:
		t.Error("the PodDisruptionBudget sets both minAvailable and maxUnavailable")
	case pdb.MinAvailable != nil:
		n, err := intstr.GetScaledValueFromIntOrPercent(pdb.MinAvailable, minReplicas, true)
		if err != nil || n >= minReplicas {
			t.Errorf("the PodDisruptionBudget's minAvailable %s leaves no pod of %d to evict: no node could be drained", pdb.MinAvailable.String(), minReplicas)
		}
	case pdb.MaxUnavailable != nil:
		n, err := intstr.GetScaledValueFromIntOrPercent(pdb.MaxUnavailable, minReplicas, true)
		if err != nil || n < 1 {
			t.Errorf("the PodDisruptionBudget's maxUnavailable %s lets no pod be evicted", pdb.MaxUnavailable.String())
		}
	default:
		t.Error("the PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
	}
}

// checkLagTrigger: KEDA watches the service's own consumer group on its own topic, on the same
// cluster, with the credentials the service has.
func checkLagTrigger(t *testing.T, r *release) {
	so := r.scaledObject.Spec
	if len(so.Triggers) != 1 || so.Triggers[0].Type != "kafka" {
		t.Fatalf("the ScaledObject's triggers are %+v, want one kafka trigger", so.Triggers)
	}
	trig := so.Triggers[0]
	env := r.env(t, r.deployment.Spec.Template.Spec.Containers[0])
	for key, want := range map[string]string{
		"bootstrapServers":   env["KAFKA_BROKERS"],
		"consumerGroup":      env["KAFKA_CONSUMER_GROUP"],
		"topic":              env["TOPIC_PREFIX"] + ".requested",
		"offsetResetPolicy":  env["KAFKA_CONSUMER_OFFSET"],
		"allowIdleConsumers": "false",
	} {
		if trig.Metadata[key] != want {
			t.Errorf("the kafka trigger's %s is %q, want %q", key, trig.Metadata[key], want)
		}
	}
	if n, err := strconv.Atoi(trig.Metadata["lagThreshold"]); err != nil || n < 1 {
		t.Errorf("lagThreshold %q", trig.Metadata["lagThreshold"])
	}
	wantTLS := env["KAFKA_TLS_ENABLED"] == "true"
	if (trig.Metadata["tls"] == "enable") != wantTLS {
		t.Errorf("the trigger's tls is %q, the service's KAFKA_TLS_ENABLED %q", trig.Metadata["tls"], env["KAFKA_TLS_ENABLED"])
	}
	mechanism := map[string]string{"": "", "PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}[env["KAFKA_SASL_MECHANISM"]]
	if trig.Metadata["sasl"] != mechanism {
		t.Errorf("the trigger's sasl is %q, want %q for KAFKA_SASL_MECHANISM %q", trig.Metadata["sasl"], mechanism, env["KAFKA_SASL_MECHANISM"])
	}
	if !wantTLS && mechanism == "" {
		return
	}
	if trig.AuthenticationRef == nil || r.triggerAuth == nil || trig.AuthenticationRef.Name != r.triggerAuth.Name {
		t.Fatalf("the trigger needs credentials but names no rendered TriggerAuthentication: %+v", trig.AuthenticationRef)
	}
	params := map[string]string{}
	for _, ref := range r.triggerAuth.Spec.SecretTargetRef {
		params[ref.Parameter] = ref.Name + "/" + ref.Key
		if s, ok := r.secrets[ref.Name]; ok {
			if _, ok := s.Data[ref.Key]; !ok {
				t.Errorf("the TriggerAuthentication's %s reads key %s of Secret %s, which has no such key", ref.Parameter, ref.Key, ref.Name)
			}
		}
	}
	if mechanism != "" && (params["username"] == "" || params["password"] == "") {
		t.Errorf("SASL without a username and a password for KEDA: %v", params)
	}
	if env["KAFKA_TLS_CA_FILE"] != "" && params["ca"] == "" {
		t.Errorf("the service trusts a CA of its own, KEDA is not given it: %v", params)
	}
}

func checkNetworkPolicy(t *testing.T, r *release) {
	np := r.networkPolicy
	if np == nil {
		return
	}
	if !slices.Contains(np.Spec.PolicyTypes, "Ingress") || !slices.Contains(np.Spec.PolicyTypes, "Egress") {
		t.Errorf("policyTypes %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	httpIn := false
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			httpIn = httpIn || (p.Port != nil && *p.Port == intstr.FromString("http"))
		}
	}
	if !httpIn {
		t.Error("the NetworkPolicy lets nothing reach the http port: Prometheus could not scrape")
	}
	egress := map[string]bool{}
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			if p.Port != nil {
				egress[p.Port.String()] = true
			}
		}
	}
	if !egress["53"] {
		t.Error("the NetworkPolicy blocks DNS: the brokers' names would not resolve")
	}
	env := r.env(t, r.deployment.Spec.Template.Spec.Containers[0])
	if endpoint := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil {
			t.Fatalf("OTEL_EXPORTER_OTLP_ENDPOINT %q: %v", endpoint, err)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"grpc": "4317"}[env["OTEL_EXPORTER_OTLP_PROTOCOL"]]
			if port == "" {
				port = "4318"
			}
		}
		if !egress[port] {
			t.Errorf("the NetworkPolicy blocks port %s of the OTLP receiver %s: no spans would leave", port, endpoint)
		}
	}
	for _, broker := range strings.Split(env["KAFKA_BROKERS"], ",") {
		_, port, err := net.SplitHostPort(broker)
		if err != nil {
			t.Fatalf("KAFKA_BROKERS %q: %v", broker, err)
		}
		if !egress[port] {
			t.Errorf("the NetworkPolicy blocks port %s of broker %s", port, broker)
		}
	}
}

func checkMonitoring(t *testing.T, r *release) {
	if sm := r.serviceMonitor; sm != nil {
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("the ServiceMonitor scrapes %+v, want /metrics on port http", sm.Spec.Endpoints)
		}
	}
	if pr := r.prometheusRule; pr != nil {
		// The rules are the repository's rule file, group for group, field for field.
		var file struct {
			Groups []any `json:"groups"`
		}
		if err := yaml.Unmarshal(readRepoFile(t, "deployments/prometheus/rules/pingpong-alerts.yml"), &file); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(pr.Spec.Groups)
		var rendered []any
		if err := json.Unmarshal(b, &rendered); err != nil {
			t.Fatal(err)
		}
		if len(file.Groups) == 0 || !reflect.DeepEqual(normalize(rendered), normalize(file.Groups)) {
			t.Errorf("the PrometheusRule's groups differ from deployments/prometheus/rules/pingpong-alerts.yml:\nrendered %s\nfile     %s", b, mustJSON(file.Groups))
		}
	}
	if r.value(t, "metrics.grafanaDashboard.enabled") == true {
		cm := r.configMaps[r.deployment.Name+"-dashboard"]
		if cm == nil {
			t.Fatal("metrics.grafanaDashboard.enabled but no dashboard ConfigMap")
		}
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("the dashboard ConfigMap's labels %v lack grafana_dashboard: \"1\"", cm.Labels)
		}
		if want := string(readRepoFile(t, "deployments/grafana/dashboards/pingpong.json")); cm.Data["pingpong.json"] != want {
			t.Error("the dashboard ConfigMap is not deployments/grafana/dashboards/pingpong.json")
		}
		if !json.Valid([]byte(cm.Data["pingpong.json"])) {
			t.Error("the dashboard is not valid JSON")
		}
	}
}

// normalize makes two decoded YAML trees comparable: the rendered one has every number as
// float64 and durations as Prometheus wrote them.
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func checkNotes(t *testing.T, r *release) {
	for _, want := range []string{
		fmt.Sprintf("kubectl -n %s exec deploy/%s -- /usr/local/bin/pingpong ping", namespace, r.deployment.Name),
		fmt.Sprintf("kubectl -n %s exec deploy/%s -- /usr/local/bin/pingpong dlq list", namespace, r.deployment.Name),
		r.env(t, r.deployment.Spec.Template.Spec.Containers[0])["TOPIC_PREFIX"] + ".failed",
	} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES.txt does not say %q:\n%s", want, r.notes)
		}
	}
}
