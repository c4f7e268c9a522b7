package deployments

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pingpong/pingpong/middleware"
)

// TestComposeTracesGoToJaeger: pingpong exports its spans to the stack's Jaeger, on the port of
// the OTLP protocol it is told to speak.
func TestComposeTracesGoToJaeger(t *testing.T) {
	project := loadCompose(t)
	pingpong := service(t, project, "pingpong")
	endpoint := env(pingpong, "OTEL_EXPORTER_OTLP_ENDPOINT")
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		t.Fatalf("pingpong's OTEL_EXPORTER_OTLP_ENDPOINT %q is not an http:// URL: %v", endpoint, err)
	}
	host, port := splitHostPort(t, "OTEL_EXPORTER_OTLP_ENDPOINT", u.Host)
	jaeger, ok := project.Services[host]
	if !ok || !strings.HasPrefix(jaeger.Image, "jaegertracing/jaeger:2.") {
		t.Fatalf("pingpong exports traces to %s, which is not the stack's Jaeger v2", endpoint)
	}
	want := map[string]int{"http/protobuf": 4318, "grpc": 4317}[env(pingpong, "OTEL_EXPORTER_OTLP_PROTOCOL")]
	if want == 0 || port != want || !declaresPort(jaeger, port) {
		t.Errorf("pingpong speaks OTLP %q to port %d; Jaeger takes http/protobuf on 4318 and grpc on 4317 (declared: %v)",
			env(pingpong, "OTEL_EXPORTER_OTLP_PROTOCOL"), port, jaeger.Expose)
	}
	if env(pingpong, "OTEL_SERVICE_NAME") != "pingpong" {
		t.Errorf("OTEL_SERVICE_NAME %q: the traces should be found under pingpong", env(pingpong, "OTEL_SERVICE_NAME"))
	}
}

// TestPrometheusStoresExemplars: Prometheus keeps the trace ids on pingpong's histograms only
// with exemplar storage on, and compose's command must still load the mounted configuration.
func TestPrometheusStoresExemplars(t *testing.T) {
	project := loadCompose(t)
	prom := service(t, project, "prometheus")
	if !slices.Contains(prom.Command, "--enable-feature=exemplar-storage") {
		t.Errorf("prometheus command %v has no --enable-feature=exemplar-storage", prom.Command)
	}
	target := bindMountTarget(t, project, prom, prometheusConfig)
	if !slices.Contains(prom.Command, "--config.file="+target) {
		t.Errorf("prometheus command %v does not load the mounted %s (at %s)", prom.Command, prometheusConfig, target)
	}
}

// TestGrafanaExemplarsOpenTheirTrace: the Prometheus datasource links an exemplar's trace id,
// under the label pingpong gives it, to a provisioned Jaeger datasource that is the stack's.
func TestGrafanaExemplarsOpenTheirTrace(t *testing.T) {
	project := loadCompose(t)
	type datasource struct {
		UID      string `yaml:"uid"`
		Type     string `yaml:"type"`
		URL      string `yaml:"url"`
		JSONData struct {
			ExemplarTraceIDDestinations []struct {
				Name          string `yaml:"name"`
				DatasourceUID string `yaml:"datasourceUid"`
			} `yaml:"exemplarTraceIdDestinations"`
		} `yaml:"jsonData"`
	}
	byUID := map[string]datasource{}
	for _, file := range provisioningFiles(t, "datasources") {
		var f struct {
			Datasources []datasource `yaml:"datasources"`
		}
		readYAML(t, file, &f)
		for _, d := range f.Datasources {
			byUID[d.UID] = d
		}
	}
	var linked bool
	for _, dest := range byUID["prometheus"].JSONData.ExemplarTraceIDDestinations {
		if dest.Name != middleware.ExemplarTraceID {
			continue
		}
		jaeger, ok := byUID[dest.DatasourceUID]
		if !ok || jaeger.Type != "jaeger" {
			t.Errorf("exemplars link to datasource %q, which is no provisioned Jaeger datasource", dest.DatasourceUID)
			continue
		}
		u, err := url.Parse(jaeger.URL)
		if err != nil {
			t.Fatalf("jaeger datasource url %q: %v", jaeger.URL, err)
		}
		host, port := splitHostPort(t, "jaeger datasource url", u.Host)
		if s, ok := project.Services[host]; !ok || !declaresPort(s, port) || !strings.HasPrefix(s.Image, "jaegertracing/jaeger:") {
			t.Errorf("the Jaeger datasource's url %s is not the stack's jaeger service", jaeger.URL)
		}
		linked = true
	}
	if !linked {
		t.Errorf("the Prometheus datasource links no exemplar label %q to a trace", middleware.ExemplarTraceID)
	}
}
