// Package telemetry sets up OpenTelemetry tracing from the standard OTEL_ environment variables.
// They are read by the OpenTelemetry SDK and its OTLP exporters, not by the service's own
// configuration: they mean the same in every service of a traced system, and they have no flags
// (README, "Tracing"). Tracing is on only when an OTLP endpoint is set.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pingpong/pingpong/app/config"
)

// The variables the service looks at itself; the SDK and the exporters read the others
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE, OTEL_BSP_*, ...).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvSampler        = "OTEL_TRACES_SAMPLER"
	EnvSamplerArg     = "OTEL_TRACES_SAMPLER_ARG"
	EnvResource       = "OTEL_RESOURCE_ATTRIBUTES"
)

// bspVariables are the batch span processor's settings, each a number of milliseconds or spans.
var bspVariables = []string{"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"}

// EnvNames lists the OpenTelemetry variables the README documents, which deployments may set
// beside the service's own (config.ServiceEnvNames). The exporters read a few more
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE and their _TRACES_ forms).
func EnvNames() []string {
	return append([]string{EnvEndpoint, EnvTracesEndpoint, EnvProtocol, EnvTracesProtocol, "OTEL_SERVICE_NAME", EnvResource,
		EnvSampler, EnvSamplerArg, EnvSDKDisabled, EnvTracesExporter, "OTEL_EXPORTER_OTLP_HEADERS"}, bspVariables...)
}

// Tracing is the service's tracer and what shuts it down.
type Tracing struct {
	// Tracer makes the service's spans; nil when tracing is off (no endpoint set).
	Tracer   trace.Tracer
	provider *sdktrace.TracerProvider
}

// Enabled tells whether the environment asks for traces to be exported: an OTLP endpoint is set,
// and neither OTEL_SDK_DISABLED nor OTEL_TRACES_EXPORTER=none turns them off.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") ||
		strings.TrimSpace(getenv(EnvTracesExporter)) == "none" {
		return false
	}
	return getenv(EnvTracesEndpoint) != "" || getenv(EnvEndpoint) != ""
}

// Check validates the variables the SDK would otherwise ignore with a log line and a default:
// a sampler that is not one, an unknown protocol, a batch setting that is not a number. The
// error is a *config.Error, so the service exits 2 naming the variable.
func Check(getenv func(string) string) error {
	if !Enabled(getenv) {
		return nil
	}
	if _, err := protocol(getenv); err != nil {
		return err
	}
	if v := strings.TrimSpace(getenv(EnvTracesExporter)); v != "" && v != "otlp" {
		return invalid(EnvTracesExporter, v, "must be otlp or none")
	}
	sampler := strings.ToLower(strings.TrimSpace(getenv(EnvSampler)))
	switch sampler {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
	case "traceidratio", "parentbased_traceidratio":
		if arg := strings.TrimSpace(getenv(EnvSamplerArg)); arg != "" {
			if r, err := strconv.ParseFloat(arg, 64); err != nil || r < 0 || r > 1 {
				return invalid(EnvSamplerArg, arg, "must be a ratio from 0 to 1")
			}
		}
	default:
		return invalid(EnvSampler, sampler, "must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio")
	}
	for _, env := range bspVariables {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n <= 0 {
				return invalid(env, v, "must be a positive whole number")
			}
		}
	}
	return nil
}

// protocol is the OTLP protocol the traces are exported with: the traces-specific variable, else
// the general one, else the specification's default, http/protobuf.
func protocol(getenv func(string) string) (string, error) {
	env, p := EnvTracesProtocol, strings.TrimSpace(getenv(EnvTracesProtocol))
	if p == "" {
		env, p = EnvProtocol, strings.TrimSpace(getenv(EnvProtocol))
	}
	switch p {
	case "":
		return "http/protobuf", nil
	case "http/protobuf", "grpc":
		return p, nil
	}
	return "", invalid(env, p, "must be http/protobuf or grpc")
}

func invalid(env, value, problem string) error {
	return &config.Error{Env: env, Value: value, Problem: problem}
}

// New starts tracing as the environment says: with no endpoint set it returns a Tracing whose
// Tracer is nil and which costs nothing. The exporter connects lazily; an unreachable endpoint
// is logged, never fatal: traces are dropped, requests are answered. version is the service's.
func New(ctx context.Context, version string, logger *logrus.Entry) (*Tracing, error) {
	if !Enabled(os.Getenv) {
		return &Tracing{}, nil
	}
	if err := Check(os.Getenv); err != nil {
		return nil, err
	}
	p, _ := protocol(os.Getenv)
	var exporter sdktrace.SpanExporter
	var err error
	if p == "grpc" {
		exporter, err = otlptracegrpc.New(ctx)
	} else {
		exporter, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("the OTLP trace exporter (OTEL_EXPORTER_OTLP_*): %w", err)
	}
	// The service's name and version unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say
	// otherwise: WithFromEnv comes after, and wins.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("pingpong"), semconv.ServiceVersion(version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, errors.Join(invalid(EnvResource, os.Getenv(EnvResource), err.Error()), exporter.Shutdown(ctx))
	}
	// Export failures go to the log, not to stderr through the standard logger.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.WithError(err).Warn("OpenTelemetry: spans could not be exported; requests are still answered")
	}))
	// The sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on) and the batch processor's
	// settings (OTEL_BSP_*) are read from the environment by the SDK.
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return &Tracing{Tracer: provider.Tracer("github.com/pingpong/pingpong", trace.WithInstrumentationVersion(version),
		trace.WithSchemaURL(semconv.SchemaURL)), provider: provider}, nil
}

// Shutdown exports the spans still queued, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("exporting the last spans: %w", err)
	}
	return nil
}
