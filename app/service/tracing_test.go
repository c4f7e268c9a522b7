package service_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/service"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/poison"
)

const (
	upstreamTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	upstreamSpan  = "00f067aa0ba902b7"
	traceparent   = "00-" + upstreamTrace + "-" + upstreamSpan + "-01"
)

// tracedRequests sends a ping and a pang with the upstream trace context, and a ping without
// one, from an independent client, and returns their answers by record key.
func tracedRequests(t *testing.T, brokers []string) map[string]*kgo.Record {
	t.Helper()
	client := servicetest.Client(t, brokers)
	tp := []kgo.RecordHeader{{Key: "traceparent", Value: []byte(traceparent)}, {Key: "tracestate", Value: []byte("vendor=opaque")}}
	records := []*kgo.Record{
		{Key: []byte("ping"), Value: []byte(`{"transaction-id": "ping", "payload": {"message": "ping"}}`), Headers: tp},
		{Key: []byte("pang"), Value: []byte(`{"transaction-id": "pang", "payload": {"message": "pang"}}`), Headers: tp},
		{Key: []byte("bare"), Value: []byte(`{"transaction-id": "bare", "payload": {"message": "ping"}}`)},
	}
	for _, r := range records {
		r.Topic = servicetest.Topics.Requested
	}
	if err := client.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	reader := servicetest.Client(t, brokers, kgo.ConsumeTopics(servicetest.Topics.Succeeded, servicetest.Topics.Failed),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	answers := map[string]*kgo.Record{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(answers) < len(records) && ctx.Err() == nil {
		reader.PollFetches(ctx).EachRecord(func(r *kgo.Record) { answers[string(r.Key)] = r })
	}
	if len(answers) < len(records) {
		t.Fatalf("%d answers of %d", len(answers), len(records))
	}
	return answers
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Each transport carries the request's trace context, through the service's spans, onto its
// answer and its poison record.
func TestAnswersContinueTheRequestsTrace(t *testing.T) {
	for _, transport := range []string{config.TransportFranz, config.TransportWatermill} {
		t.Run(transport, func(t *testing.T) {
			cluster := servicetest.Cluster(t, 1)
			brokers := cluster.ListenAddrs()
			cfg := servicetest.Config(t, brokers)
			cfg.Transport.Name = transport
			spans := tracetest.NewSpanRecorder()
			tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test")
			svc := servicetest.Start(t, cfg, service.WithTracer(tracer))
			answers := tracedRequests(t, brokers)

			// A request's spans end once its answer is acknowledged, which may be after the
			// answer is read: wait for the last of them, the receive spans.
			waitFor(t, 10*time.Second, func() bool {
				n := 0
				for _, s := range spans.Ended() {
					if strings.HasPrefix(s.Name(), "receive ") {
						n++
					}
				}
				return n == len(answers)
			})
			sends := map[trace.SpanID]sdktrace.ReadOnlySpan{}
			byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
			for _, s := range spans.Ended() {
				byID[s.SpanContext().SpanID()] = s
				if strings.HasPrefix(s.Name(), "send ") {
					sends[s.SpanContext().SpanID()] = s
				}
			}
			for _, key := range []string{"ping", "pang", "bare"} {
				answer := answers[key]
				parts := strings.Split(header(answer, "traceparent"), "-")
				if len(parts) != 4 {
					t.Fatalf("%s's answer has traceparent %q", key, header(answer, "traceparent"))
				}
				var sid trace.SpanID
				copy(sid[:], mustHex(t, parts[2]))
				send, ok := sends[sid]
				if !ok {
					t.Fatalf("%s's answer traceparent %s is no send span of the service", key, header(answer, "traceparent"))
				}
				if send.Name() != "send "+answer.Topic {
					t.Errorf("%s answered on %s by span %q", key, answer.Topic, send.Name())
				}
				// send > process > receive > the request's producer span (or none).
				process := byID[send.Parent().SpanID()]
				receive := byID[process.Parent().SpanID()]
				if process == nil || receive == nil || process.Name() != "process "+servicetest.Topics.Requested || receive.Name() != "receive "+servicetest.Topics.Requested {
					t.Fatalf("%s: send's ancestors are not process and receive", key)
				}
				if got := attrs(receive); got["messaging.system"] != "kafka" || got["messaging.destination.partition.id"] != "0" ||
					got["messaging.kafka.offset"] == "" || got["messaging.consumer.group.name"] != cfg.ConsumerGroup || got["messaging.kafka.message.key"] != key {
					t.Errorf("%s: receive attributes %v", key, got)
				}
				if key == "bare" {
					if receive.Parent().IsValid() || parts[1] == upstreamTrace {
						t.Errorf("a request without a trace context starts a trace: parent %v", receive.Parent())
					}
					continue
				}
				if parts[1] != upstreamTrace || receive.Parent().SpanID().String() != upstreamSpan {
					t.Errorf("%s: answer in trace %s, receive's parent %s; want trace %s under span %s", key, parts[1], receive.Parent().SpanID(), upstreamTrace, upstreamSpan)
				}
				if header(answer, "tracestate") != "vendor=opaque" {
					t.Errorf("%s: tracestate %q", key, header(answer, "tracestate"))
				}
			}
			if answers["pang"].Topic != servicetest.Topics.Failed || header(answers["pang"], poison.HeaderReasonCode) != string(poison.ReasonNotPing) {
				t.Errorf("the pang is poisoned, on %s", answers["pang"].Topic)
			}

			// A scraper that asks for OpenMetrics gets the latency histogram's exemplars: the
			// trace id of a sampled request on the bucket it fell in.
			metrics := scrapeOpenMetrics(t, "http://"+svc.HTTPAddr()+"/metrics")
			exemplar := regexp.MustCompile(`(?m)^pingpong_processing_duration_seconds_bucket\{le="[^"]+"\} \d+ # \{trace_id="` + upstreamTrace + `"\} `)
			if !exemplar.MatchString(metrics) {
				t.Errorf("/metrics in OpenMetrics has no exemplar with trace_id %s on pingpong_processing_duration_seconds:\n%s", upstreamTrace, grepLines(metrics, "pingpong_processing_duration_seconds_bucket"))
			}
		})
	}
}

func scrapeOpenMetrics(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("/metrics answered %q to a scraper asking for OpenMetrics, the only format with exemplars", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func grepLines(text, prefix string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// With tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT) each transport still carries the request's
// trace context to its answers, unchanged.
func TestTraceContextIsCarriedWithExportOff(t *testing.T) {
	for _, transport := range []string{config.TransportFranz, config.TransportWatermill} {
		t.Run(transport, func(t *testing.T) {
			cluster := servicetest.Cluster(t, 1)
			brokers := cluster.ListenAddrs()
			cfg := servicetest.Config(t, brokers)
			cfg.Transport.Name = transport
			servicetest.Start(t, cfg)
			answers := tracedRequests(t, brokers)
			for _, key := range []string{"ping", "pang"} {
				if got := header(answers[key], "traceparent"); got != traceparent {
					t.Errorf("%s's answer traceparent %q, want the request's %q", key, got, traceparent)
				}
			}
			if got := header(answers["bare"], "traceparent"); got != "" {
				t.Errorf("an untraced request's answer has traceparent %q", got)
			}
		})
	}
}

func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	id, err := trace.SpanIDFromHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return id[:]
}
