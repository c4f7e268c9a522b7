package middleware_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pingpong/pingpong/middleware"
	poisonformat "github.com/pingpong/pingpong/poison"
	"github.com/pingpong/pingpong/source"
)

// A request's trace context, as an upstream producer (its span 00f067aa0ba902b7) writes it.
const (
	upstreamTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	upstreamSpan  = "00f067aa0ba902b7"
	traceparent   = "00-" + upstreamTrace + "-" + upstreamSpan + "-01"
	tracestate    = "vendor=opaque"
)

type traced struct {
	*harness
	spans *tracetest.SpanRecorder
}

// newTraced is the harness's chain with tracing on, every span recorded in memory.
func newTraced(t *testing.T, h message.HandlerFunc, level logrus.Level) *traced {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test")
	hs := newHarness(t, h, level)
	hs.chain = tracedChain(hs, tracer)
	return &traced{harness: hs, spans: spans}
}

// tracedChain is the harness's chain with the service's tracing: tracer nil is export off.
func tracedChain(hs *harness, tracer trace.Tracer) message.HandlerFunc {
	return tracedChainWith(hs, hs.pub, tracer)
}

func tracedChainWith(hs *harness, publisher message.Publisher, tracer trace.Tracer) message.HandlerFunc {
	pub := middleware.TracePublisher(publisher, tracer)
	return middleware.Chain(hs.handler, middleware.ChainConfig{
		Publisher:      pub,
		SucceededTopic: "t.succeeded",
		FailedTopic:    "t.failed",
		Retry: wmmiddleware.Retry{
			MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, Multiplier: 2,
		},
		MaxOriginalBytes: 4096,
		Logger:           logrus.NewEntry(hs.logger),
		Metrics:          hs.metrics,
		Source:           func(*message.Message) source.Source { return requestSource },
		Tracing:          middleware.Tracing{Tracer: tracer, ConsumerGroup: "g"},
	})
}

// byName returns the ended spans of that name, in the order they ended.
func (tr *traced) byName(name string) []sdktrace.ReadOnlySpan {
	var found []sdktrace.ReadOnlySpan
	for _, s := range tr.spans.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	return found
}

func (tr *traced) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	found := tr.byName(name)
	if len(found) != 1 {
		var names []string
		for _, s := range tr.spans.Ended() {
			names = append(names, s.Name())
		}
		t.Fatalf("want one span %q, got %d among %v", name, len(found), names)
	}
	return found[0]
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.Emit()
	}
	return m
}

// contextOf reads the trace context a published message carries.
func contextOf(t *testing.T, msg *message.Message) (traceID, spanID, flags string) {
	t.Helper()
	parts := strings.Split(msg.Metadata.Get(middleware.HeaderTraceparent), "-")
	if len(parts) != 4 || parts[0] != "00" {
		t.Fatalf("traceparent %q is not W3C's", msg.Metadata.Get(middleware.HeaderTraceparent))
	}
	return parts[1], parts[2], parts[3]
}

func TestTraceRunsFromRequestToAnswer(t *testing.T) {
	tr := newTraced(t, pingpong, logrus.DebugLevel)
	in := request(`{"transaction-id": "a1", "payload": {"message": "ping"}}`)
	in.Metadata.Set(middleware.HeaderTraceparent, traceparent)
	in.Metadata.Set(middleware.HeaderTracestate, tracestate)
	in.Metadata.Set(wmmiddleware.CorrelationIDMetadataKey, "corr-7")
	if _, err := tr.chain(in); err != nil {
		t.Fatal(err)
	}
	receive, process, send := tr.one(t, "receive t.requested"), tr.one(t, "process t.requested"), tr.one(t, "send t.succeeded")

	// receive is a child of the request's producer, process of receive, send of process.
	if got := receive.Parent().SpanID().String(); got != upstreamSpan || !receive.Parent().IsRemote() {
		t.Errorf("receive's parent %s, want the request's span %s", got, upstreamSpan)
	}
	if process.Parent().SpanID() != receive.SpanContext().SpanID() || send.Parent().SpanID() != process.SpanContext().SpanID() {
		t.Error("want receive > process > send")
	}
	for _, s := range []sdktrace.ReadOnlySpan{receive, process, send} {
		if s.SpanContext().TraceID().String() != upstreamTrace {
			t.Errorf("%s is in trace %s, want the request's %s", s.Name(), s.SpanContext().TraceID(), upstreamTrace)
		}
	}
	if links := process.Links(); len(links) != 1 || links[0].SpanContext.SpanID().String() != upstreamSpan {
		t.Errorf("process links to the request's creation context, got %v", links)
	}

	// The messaging conventions: kinds and attributes.
	for s, kind := range map[sdktrace.ReadOnlySpan]trace.SpanKind{receive: trace.SpanKindClient, process: trace.SpanKindConsumer, send: trace.SpanKindProducer} {
		if s.SpanKind() != kind {
			t.Errorf("%s is %v, want %v", s.Name(), s.SpanKind(), kind)
		}
	}
	want := map[attribute.Key]string{
		"messaging.system": "kafka", "messaging.operation.type": "receive", "messaging.operation.name": "receive",
		"messaging.destination.name": "t.requested", "messaging.destination.partition.id": "3", "messaging.kafka.offset": "41",
		"messaging.kafka.message.key": "k1", "messaging.consumer.group.name": "g", "messaging.message.conversation_id": "corr-7",
	}
	got := attrs(receive)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("receive %s = %q, want %q", k, got[k], v)
		}
	}
	if a := attrs(process); a["messaging.operation.type"] != "process" || a["messaging.destination.name"] != "t.requested" ||
		a["pingpong.outcome"] != "pong" || a["messaging.system"] != "kafka" {
		t.Errorf("process attributes %v", a)
	}
	if a := attrs(send); a["messaging.operation.type"] != "send" || a["messaging.destination.name"] != "t.succeeded" {
		t.Errorf("send attributes %v", a)
	}

	// The answer carries the send span's context: a child in the request's trace, still sampled,
	// with the request's tracestate.
	pong := tr.pub.on("t.succeeded")[0]
	traceID, spanID, flags := contextOf(t, pong)
	if traceID != upstreamTrace || spanID != send.SpanContext().SpanID().String() || flags != "01" {
		t.Errorf("answer traceparent %s, want trace %s span %s sampled", pong.Metadata.Get(middleware.HeaderTraceparent), upstreamTrace, send.SpanContext().SpanID())
	}
	if got := pong.Metadata.Get(middleware.HeaderTracestate); got != tracestate {
		t.Errorf("answer tracestate %q, want %q", got, tracestate)
	}

	// The request's log line names its trace; its latency is an exemplar with the trace id.
	if !strings.Contains(tr.logs.String(), `"trace_id":"`+upstreamTrace+`"`) ||
		!strings.Contains(tr.logs.String(), `"span_id":"`+process.SpanContext().SpanID().String()+`"`) {
		t.Errorf("the log line has no trace_id and span_id of the process span:\n%s", tr.logs)
	}
	if got := exemplarTraceIDs(t, tr.metrics.Duration.(interface{ Write(*dto.Metric) error })); len(got) != 1 || got[0] != upstreamTrace {
		t.Errorf("processing duration exemplars %v, want one with trace_id %s", got, upstreamTrace)
	}
}

func exemplarTraceIDs(t *testing.T, h interface{ Write(*dto.Metric) error }) []string {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range m.GetHistogram().GetBucket() {
		for _, l := range b.GetExemplar().GetLabel() {
			if l.GetName() == "trace_id" {
				ids = append(ids, l.GetValue())
			}
		}
	}
	return ids
}

func TestRequestWithoutTraceContextStartsATrace(t *testing.T) {
	tr := newTraced(t, pingpong, logrus.InfoLevel)
	if _, err := tr.chain(request(`{"transaction-id": "a1", "payload": {"message": "ping"}}`)); err != nil {
		t.Fatal(err)
	}
	receive, send := tr.one(t, "receive t.requested"), tr.one(t, "send t.succeeded")
	if receive.Parent().IsValid() {
		t.Errorf("receive has a parent %v: a request without a trace context starts a trace", receive.Parent())
	}
	if links := tr.one(t, "process t.requested").Links(); len(links) != 0 {
		t.Errorf("nothing to link to, got %v", links)
	}
	traceID, spanID, _ := contextOf(t, tr.pub.on("t.succeeded")[0])
	if traceID != receive.SpanContext().TraceID().String() || spanID != send.SpanContext().SpanID().String() {
		t.Error("the answer carries the new trace, from its send span")
	}
}

func TestRetriesAndPoisonAreOnTheProcessSpan(t *testing.T) {
	tr := newTraced(t, pingpong, logrus.InfoLevel)
	tr.pub.failures["t.succeeded"] = -1
	in := request(`{"transaction-id": 9, "payload": {"message": "ping"}}`)
	in.Metadata.Set(middleware.HeaderTraceparent, traceparent)
	if _, err := tr.chain(in); err != nil {
		t.Fatal(err)
	}
	process := tr.one(t, "process t.requested")
	var failed, poisoned int
	for _, e := range process.Events() {
		switch e.Name {
		case "attempt failed":
			failed++
		case "poisoned":
			poisoned++
			if a := attribute.NewSet(e.Attributes...); a.HasValue("pingpong.reason_code") {
				if v, _ := a.Value("pingpong.reason_code"); v.AsString() != string(poisonformat.ReasonRetriesExhausted) {
					t.Errorf("poisoned event reason code %s", v.AsString())
				}
			}
		}
	}
	if failed != 4 || poisoned != 1 {
		t.Errorf("want 4 failed attempts (1 + 3 retries) and 1 poisoned event, got %d and %d", failed, poisoned)
	}
	if process.Status().Code != codes.Error || attrs(process)["error.type"] != string(poisonformat.ReasonRetriesExhausted) ||
		attrs(process)["pingpong.attempts"] != "4" {
		t.Errorf("process status %v, attributes %v: a request that failed for good is an error", process.Status(), attrs(process))
	}
	// Each attempt's publish is a failed send span; the poison record's is the one that worked.
	sends := tr.byName("send t.succeeded")
	if len(sends) != 4 {
		t.Fatalf("want a send span for each of the 4 attempts, got %d", len(sends))
	}
	for _, s := range sends {
		if s.Status().Code != codes.Error || s.Parent().SpanID() != process.SpanContext().SpanID() {
			t.Errorf("failed send %v, parent %v", s.Status(), s.Parent())
		}
	}
	poison := tr.one(t, "send t.failed")
	if poison.Status().Code == codes.Error || attrs(poison)["pingpong.reason_code"] != string(poisonformat.ReasonRetriesExhausted) {
		t.Errorf("poison send %v %v", poison.Status(), attrs(poison))
	}
	traceID, spanID, _ := contextOf(t, tr.pub.on("t.failed")[0])
	if traceID != upstreamTrace || spanID != poison.SpanContext().SpanID().String() {
		t.Errorf("the poison record continues the request's trace from its send span, got %s/%s", traceID, spanID)
	}
}

func TestRejectionIsPoisonedWithoutAnError(t *testing.T) {
	tr := newTraced(t, pingpong, logrus.InfoLevel)
	in := request(`{"transaction-id": "n", "payload": {"message": "pang"}}`)
	in.Metadata.Set(middleware.HeaderTraceparent, traceparent)
	in.Metadata.Set(middleware.HeaderTracestate, tracestate)
	if _, err := tr.chain(in); err != nil {
		t.Fatal(err)
	}
	process, poison := tr.one(t, "process t.requested"), tr.one(t, "send t.failed")
	if process.Status().Code == codes.Error || attrs(process)["pingpong.outcome"] != "not_ping" {
		t.Errorf("a rejection is the contract's answer, not an error: %v %v", process.Status(), attrs(process))
	}
	// The poison record carries the request's headers, but its trace context is its own span's.
	rec := tr.pub.on("t.failed")[0]
	if _, spanID, _ := contextOf(t, rec); spanID != poison.SpanContext().SpanID().String() {
		t.Errorf("poison record traceparent %s: the request's, not its send span's", rec.Metadata.Get(middleware.HeaderTraceparent))
	}
	if got := rec.Metadata.Get(middleware.HeaderTracestate); got != tracestate {
		t.Errorf("poison record tracestate %q", got)
	}
}

// With export off (no endpoint) no span is made, and the answers continue the request's trace:
// they carry its trace context as it came.
func TestExportOffCarriesTheRequestsTraceContext(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	hs.chain = tracedChain(hs, nil)
	for _, body := range []string{`{"transaction-id": "a", "payload": {"message": "ping"}}`, `{"transaction-id": "b", "payload": {"message": "pang"}}`} {
		in := request(body)
		in.Metadata.Set(middleware.HeaderTraceparent, traceparent)
		in.Metadata.Set(middleware.HeaderTracestate, tracestate)
		if _, err := hs.chain(in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := hs.chain(request(`{"transaction-id": "c", "payload": {"message": "ping"}}`)); err != nil {
		t.Fatal(err)
	}
	pongs, failed := hs.pub.on("t.succeeded"), hs.pub.on("t.failed")
	if len(pongs) != 2 || len(failed) != 1 {
		t.Fatalf("%d pongs, %d failed", len(pongs), len(failed))
	}
	for _, a := range []*message.Message{pongs[0], failed[0]} {
		if a.Metadata.Get(middleware.HeaderTraceparent) != traceparent || a.Metadata.Get(middleware.HeaderTracestate) != tracestate {
			t.Errorf("answer %s carries %q %q, want the request's trace context", a.Payload, a.Metadata.Get(middleware.HeaderTraceparent), a.Metadata.Get(middleware.HeaderTracestate))
		}
	}
	if got := hs.pub.on("t.succeeded")[1].Metadata.Get(middleware.HeaderTraceparent); got != "" {
		t.Errorf("a request without a trace context gets an answer without one when export is off, got %q", got)
	}
}

func TestOversizedTracestateIsNotCarried(t *testing.T) {
	tr := newTraced(t, pingpong, logrus.InfoLevel)
	in := request(`{"transaction-id": "a", "payload": {"message": "ping"}}`)
	in.Metadata.Set(middleware.HeaderTraceparent, traceparent)
	in.Metadata.Set(middleware.HeaderTracestate, "k="+strings.Repeat("v", middleware.MaxTracestateBytes))
	if _, err := tr.chain(in); err != nil {
		t.Fatal(err)
	}
	pong := tr.pub.on("t.succeeded")[0]
	if traceID, _, _ := contextOf(t, pong); traceID != upstreamTrace {
		t.Errorf("the trace continues, got %s", traceID)
	}
	if got := pong.Metadata.Get(middleware.HeaderTracestate); got != "" {
		t.Errorf("a tracestate above %d bytes is dropped, got %d bytes", middleware.MaxTracestateBytes, len(got))
	}
}
