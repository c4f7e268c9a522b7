package deployments

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/telemetry"
)

// The stack's services. A one-shot job is one that others wait for with
// service_completed_successfully; every other service runs until stopped.
var composeServices = []string{"grafana", "jaeger", "kafka", "kafka-exporter", "pingpong", "prometheus", "topics"}

func TestComposeHasTheStacksServices(t *testing.T) {
	project := loadCompose(t)
	got := project.ServiceNames()
	sort.Strings(got)
	if !slices.Equal(got, composeServices) {
		t.Errorf("compose.yaml services = %v, want %v", got, composeServices)
	}
}

func TestComposeFollowsTheComposeSpecification(t *testing.T) {
	// The specification dropped the top-level version key; Compose warns that it is obsolete.
	var top map[string]any
	readYAML(t, "compose.yaml", &top)
	if _, ok := top["version"]; ok {
		t.Error("compose.yaml has a top-level version: key, which the Compose specification no longer has")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "docker-compose.yml")); err == nil {
		t.Error("docker-compose.yml exists beside compose.yaml: Compose would pick one of them silently")
	}
}

func TestComposeDependencies(t *testing.T) {
	project := loadCompose(t)
	want := map[string]map[string]string{
		"topics":         {"kafka": types.ServiceConditionHealthy},
		"pingpong":       {"kafka": types.ServiceConditionHealthy, "topics": types.ServiceConditionCompletedSuccessfully},
		"kafka-exporter": {"kafka": types.ServiceConditionHealthy},
		"grafana":        {"prometheus": types.ServiceConditionHealthy, "jaeger": types.ServiceConditionHealthy},
	}
	for name, s := range project.Services {
		got := map[string]string{}
		for dep, d := range s.DependsOn {
			got[dep] = d.Condition
		}
		if len(got) == 0 && len(want[name]) == 0 {
			continue
		}
		if !mapsEqual(got, want[name]) {
			t.Errorf("%s depends on %v, want %v", name, got, want[name])
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// oneShot lists the services that others wait for to complete: jobs, not servers.
func oneShot(project *types.Project) map[string]bool {
	jobs := map[string]bool{}
	for _, s := range project.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				jobs[dep] = true
			}
		}
	}
	return jobs
}

func TestComposeHealthChecks(t *testing.T) {
	project := loadCompose(t)
	jobs := oneShot(project)
	for name, s := range project.Services {
		if jobs[name] {
			if s.Restart != "" && s.Restart != types.RestartPolicyNo {
				t.Errorf("%s is a one-shot job but restarts (%q): a job that is restarted never completes", name, s.Restart)
			}
			continue
		}
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
			t.Errorf("%s runs until stopped but has no health check", name)
			continue
		}
		if hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL" {
			t.Errorf("%s health check test %v starts with %q, want CMD or CMD-SHELL", name, hc.Test, hc.Test[0])
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
			t.Errorf("%s health check sets no interval, timeout or retries: Docker's defaults (30s) make `up --wait` slow", name)
		}
	}
	// Waiting for a service to be healthy needs a health check on it.
	for name, s := range project.Services {
		for dep, d := range s.DependsOn {
			target := project.Services[dep]
			if d.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable) {
				t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
			}
		}
	}
}

func TestComposePingpongHealthCheckNeedsNoShell(t *testing.T) {
	s := service(t, loadCompose(t), "pingpong")
	test := s.HealthCheck.Test
	// CMD, the binary, healthcheck, then flags: the distroless image has no shell.
	if len(test) < 3 || test[0] != "CMD" || filepath.Base(test[1]) != "pingpong" || test[2] != "healthcheck" {
		t.Errorf("pingpong health check = %v, want [CMD /usr/local/bin/pingpong healthcheck ...]: the image has no shell", test)
	}
	if !slices.Contains(test, "--ready") {
		t.Errorf("pingpong health check = %v, want --ready: `up --wait` should return when pings are answered", test)
	}
}

func TestComposeImagesArePinned(t *testing.T) {
	project := loadCompose(t)
	for name, s := range project.Services {
		if s.Image == "" {
			t.Errorf("%s has no image: name it, so that it is pinned and shared", name)
			continue
		}
		ref, err := reference.ParseNormalizedNamed(s.Image)
		if err != nil {
			t.Errorf("%s image %q: %v", name, s.Image, err)
			continue
		}
		tagged, hasTag := ref.(reference.Tagged)
		_, hasDigest := ref.(reference.Digested)
		switch {
		case hasDigest:
		case !hasTag:
			t.Errorf("%s image %q has no tag: it means latest, which moves", name, s.Image)
		case tagged.Tag() == "latest":
			t.Errorf("%s image %q is tagged latest, which moves: pin a version", name, s.Image)
		}
	}
}

func TestComposeBuildsOneImageForServiceAndTopicsJob(t *testing.T) {
	project := loadCompose(t)
	svc, topics := service(t, project, "pingpong"), service(t, project, "topics")
	if svc.Image != topics.Image {
		t.Errorf("pingpong runs %q but the topics job %q: they should be the same build", svc.Image, topics.Image)
	}
	for _, s := range []types.ServiceConfig{svc, topics} {
		if s.Build == nil {
			t.Errorf("%s is not built from the Dockerfile", s.Name)
			continue
		}
		if s.Build.Context != project.WorkingDir || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s builds %s from %s, want Dockerfile from the repository root", s.Name, s.Build.Dockerfile, s.Build.Context)
		}
		for _, arg := range []string{"VERSION", "COMMIT"} {
			if _, ok := s.Build.Args[arg]; !ok {
				t.Errorf("%s build passes no %s: `pingpong version` would not say what runs", s.Name, arg)
			}
		}
	}
	if got := topics.Command; !slices.Equal(got, []string{"topics", "create"}) {
		t.Errorf("topics job runs %v, want [topics create]", got)
	}
}

// TestComposeEnvironmentIsReadByTheService catches drift between compose and the code: a
// variable the service does not read is a setting that silently does nothing. OpenTelemetry's
// standard variables are read by its SDK (telemetry.EnvNames).
func TestComposeEnvironmentIsReadByTheService(t *testing.T) {
	project := loadCompose(t)
	known := append(config.ServiceEnvNames(), telemetry.EnvNames()...)
	for _, name := range []string{"pingpong", "topics"} {
		s := service(t, project, name)
		if len(s.Environment) == 0 {
			t.Errorf("%s has no environment: it would run an embedded broker instead of using kafka", name)
		}
		for key := range s.Environment {
			if !slices.Contains(known, key) {
				t.Errorf("%s sets %s, which the service does not read (config.ServiceEnvNames: %v)", name, key, known)
			}
		}
	}
}

func TestComposeKafkaIsASingleKRaftNode(t *testing.T) {
	project := loadCompose(t)
	kafka := service(t, project, "kafka")
	ref, err := reference.ParseNormalizedNamed(kafka.Image)
	if err != nil || reference.FamiliarName(ref) != "apache/kafka" {
		t.Errorf("kafka image = %q, want the official apache/kafka", kafka.Image)
	}
	for key := range kafka.Environment {
		if strings.Contains(key, "ZOOKEEPER") {
			t.Errorf("kafka sets %s: KRaft mode needs no ZooKeeper", key)
		}
	}
	roles := strings.Split(env(kafka, "KAFKA_PROCESS_ROLES"), ",")
	sort.Strings(roles)
	if !slices.Equal(roles, []string{"broker", "controller"}) {
		t.Errorf("KAFKA_PROCESS_ROLES = %q, want broker,controller (one combined node)", env(kafka, "KAFKA_PROCESS_ROLES"))
	}
	// A KRaft cluster id is a UUID in URL-safe base64; the broker refuses to format anything else.
	if id, err := base64.RawURLEncoding.DecodeString(env(kafka, "CLUSTER_ID")); err != nil || len(id) != 16 {
		t.Errorf("CLUSTER_ID = %q is not a base64 UUID (22 characters)", env(kafka, "CLUSTER_ID"))
	}
	logDirs := env(kafka, "KAFKA_LOG_DIRS")
	var dataVolume bool
	for _, v := range kafka.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == logDirs {
			dataVolume = true
		}
	}
	if logDirs == "" || !dataVolume {
		t.Errorf("kafka keeps its log in %q, which is not a named volume: the data would not survive `task down`", logDirs)
	}
}

// listeners parses Kafka's NAME://host:port,... listener lists.
func listeners(t *testing.T, value string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(value, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok {
			t.Fatalf("listener %q is not NAME://host:port", l)
		}
		out[name] = addr
	}
	return out
}

func TestComposeKafkaListeners(t *testing.T) {
	project := loadCompose(t)
	kafka := service(t, project, "kafka")
	advertised := listeners(t, env(kafka, "KAFKA_ADVERTISED_LISTENERS"))
	bound := listeners(t, env(kafka, "KAFKA_LISTENERS"))

	// The stack's clients use a listener advertised under a name they can resolve.
	for _, name := range []string{"pingpong", "topics", "kafka-exporter"} {
		s := service(t, project, name)
		brokers := env(s, "KAFKA_BROKERS")
		for _, arg := range s.Command {
			if v, ok := strings.CutPrefix(arg, "--kafka.server="); ok {
				brokers = v
			}
		}
		host, _ := splitHostPort(t, name+" brokers", brokers)
		if host != "kafka" && host != kafka.Hostname {
			t.Errorf("%s reaches the broker at %q, which is not the kafka service", name, brokers)
		}
		if !slices.Contains(mapValues(advertised), brokers) {
			t.Errorf("%s uses %q, which kafka does not advertise (%v): the client would be sent elsewhere", name, brokers, advertised)
		}
	}

	// Host tools use localhost:9092: a listener advertised as such, published on that port.
	var external string
	for name, addr := range advertised {
		if addr == "localhost:9092" {
			external = name
		}
	}
	if external == "" {
		t.Fatalf("kafka advertises no localhost:9092 listener for host tools: %v", advertised)
	}
	_, port := splitHostPort(t, "kafka listener "+external, bound[external])
	var published bool
	for _, p := range kafka.Ports {
		if int(p.Target) == port && p.Published == "9092" {
			published = true
		}
	}
	if !published {
		t.Errorf("kafka's %s listener (port %d) is not published on localhost:9092", external, port)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestComposePingpongServesMetricsOn8080(t *testing.T) {
	s := service(t, loadCompose(t), "pingpong")
	addr := env(s, "HTTP_ADDR")
	port := defaultHTTPPort(t)
	if addr != "" {
		_, port = splitHostPort(t, "pingpong HTTP_ADDR", addr)
	}
	if port != 8080 {
		t.Errorf("pingpong listens on %d, want 8080", port)
	}
	var published bool
	for _, p := range s.Ports {
		if int(p.Target) == port && p.Published == "8080" {
			published = true
		}
	}
	if !published {
		t.Errorf("pingpong's metrics port %d is not published on localhost:8080: %+v", port, s.Ports)
	}
}

func TestComposePublishesOnLocalhostOnly(t *testing.T) {
	// A development stack with no authentication should not be reachable from the network.
	for name, s := range loadCompose(t).Services {
		for _, p := range s.Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q, want 127.0.0.1", name, p.Published, p.HostIP)
			}
		}
	}
}
