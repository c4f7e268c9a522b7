package helm_test

import (
	"strings"
	"testing"

	"github.com/pingpong/pingpong/app/telemetry"
)

// TestTracingIsOffUntilAnEndpointIsSet: the chart sets no OTEL_ variable by default (the
// service then exports nothing), and with tracing.endpoint set it sets them from the values.
func TestTracingIsOffUntilAnEndpointIsSet(t *testing.T) {
	r := render(t, nil)
	for name := range r.configMaps[r.deployment.Name].Data {
		if strings.HasPrefix(name, "OTEL_") {
			t.Errorf("the default values set %s: tracing should be off until tracing.endpoint is set", name)
		}
	}

	r = render(t, map[string]any{"tracing": map[string]any{
		"endpoint": "http://collector.observability.svc:4317", "protocol": "grpc", "sampler": "parentbased_always_on",
		"resourceAttributes": map[string]any{"team": "payments", "deployment.environment.name": "staging"},
	}})
	env := r.configMaps[r.deployment.Name].Data
	want := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.observability.svc:4317",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_SERVICE_NAME":           r.deployment.Name,
		"OTEL_TRACES_SAMPLER":         "parentbased_always_on",
		"OTEL_RESOURCE_ATTRIBUTES":    "k8s.namespace.name=pingpong,deployment.environment.name=staging,team=payments",
	}
	for name, value := range want {
		if env[name] != value {
			t.Errorf("%s = %q, want %q", name, env[name], value)
		}
	}
	getenv := func(name string) string { return env[name] }
	if !telemetry.Enabled(getenv) {
		t.Error("the service would not trace with the chart's variables")
	}
	if err := telemetry.Check(getenv); err != nil {
		t.Errorf("the service would refuse the chart's variables: %v", err)
	}
}

func TestTracingValuesAreChecked(t *testing.T) {
	on := func(over map[string]any) map[string]any {
		return map[string]any{"tracing": merge(map[string]any{"endpoint": "http://collector:4318"}, over)}
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"a protocol the exporters do not speak", on(map[string]any{"protocol": "http/json"}), "/tracing/protocol"},
		{"a ratio above 1", on(map[string]any{"samplerArg": 2}), "/tracing/samplerArg"},
		{"an unknown sampler", on(map[string]any{"sampler": "sometimes"}), "/tracing/sampler"},
		{"an endpoint without a scheme", on(map[string]any{"endpoint": "collector:4318"}), "/tracing/endpoint"},
		{"a resource attribute that would split the list", on(map[string]any{"resourceAttributes": map[string]any{"team": "a,b"}}), "/tracing/resourceAttributes"},
		{"an OTEL_ variable of the chart in extraEnv", merge(on(nil), map[string]any{"extraEnv": []any{map[string]any{"name": "OTEL_SERVICE_NAME", "value": "x"}}}), "extraEnv sets OTEL_SERVICE_NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("values %v: error %v, want one about %s", tc.values, err, tc.want)
			}
		})
	}
}
