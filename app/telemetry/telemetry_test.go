package telemetry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/telemetry"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestTracingIsOnOnlyWithAnEndpoint(t *testing.T) {
	for _, tc := range []struct {
		env map[string]string
		on  bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		if got := telemetry.Enabled(env(tc.env)); got != tc.on {
			t.Errorf("%v: enabled %v, want %v", tc.env, got, tc.on)
		}
	}
}

func TestBadVariablesAreConfigurationErrors(t *testing.T) {
	on := func(kv map[string]string) map[string]string {
		kv["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:1"
		return kv
	}
	for _, tc := range []struct {
		env  map[string]string
		says string // "" for valid
	}{
		{on(map[string]string{}), ""},
		{on(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25", "OTEL_BSP_SCHEDULE_DELAY": "500"}), ""},
		{on(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}), `invalid OTEL_EXPORTER_OTLP_PROTOCOL "http/json"`},
		{on(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"}), `invalid OTEL_EXPORTER_OTLP_TRACES_PROTOCOL "udp"`},
		{on(map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}), `invalid OTEL_TRACES_SAMPLER "sometimes"`},
		{on(map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}), `invalid OTEL_TRACES_SAMPLER_ARG "2"`},
		{on(map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}), `invalid OTEL_BSP_MAX_QUEUE_SIZE "lots"`},
		{on(map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}), `invalid OTEL_TRACES_EXPORTER "zipkin"`},
		// With tracing off nothing is read, so nothing can be wrong.
		{map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, ""},
	} {
		err := telemetry.Check(env(tc.env))
		switch {
		case tc.says == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("%v: error %v, want one saying %s", tc.env, err, tc.says)
		case err != nil && !errors.As(err, new(*config.Error)):
			t.Errorf("%v: %T is not a configuration error (exit code 2)", tc.env, err)
		}
	}
}

func TestNewMakesATracerForEitherProtocol(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	off, err := telemetry.New(context.Background(), "v1", logrus.NewEntry(logrus.New()))
	if err != nil || off.Tracer != nil {
		t.Fatalf("no endpoint: tracer %v, error %v; want tracing off", off.Tracer, err)
	}
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
		tr, err := telemetry.New(context.Background(), "v1", logrus.NewEntry(logrus.New()))
		if err != nil || tr.Tracer == nil {
			t.Fatalf("%s: tracer %v, error %v", protocol, tr.Tracer, err)
		}
		if err := tr.Shutdown(context.Background()); err != nil {
			t.Errorf("%s: shutting down with nothing to export: %v", protocol, err)
		}
	}
}

func TestBadResourceAttributesAreAConfigurationError(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "team")
	_, err := telemetry.New(context.Background(), "v1", logrus.NewEntry(logrus.New()))
	if err == nil || !errors.As(err, new(*config.Error)) || !strings.Contains(err.Error(), "OTEL_RESOURCE_ATTRIBUTES") {
		t.Errorf("error %v, want a configuration error naming OTEL_RESOURCE_ATTRIBUTES", err)
	}
}
