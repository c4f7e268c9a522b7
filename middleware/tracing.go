package middleware

import (
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pingpong/pingpong/poison"
)

// W3C Trace Context, in record headers (Watermill metadata).
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// MaxTracestateBytes bounds the tracestate taken from a request: W3C asks that at least 512
// characters be propagated, and a longer one is dropped rather than copied onto every answer
// and poison record (whose size is bounded: config.PoisonOverheadBytes).
const MaxTracestateBytes = 512

// traceContext is the W3C Trace Context propagator, the one the service reads and writes.
var traceContext propagation.TextMapPropagator = propagation.TraceContext{}

// Tracing makes a request's spans, by the OpenTelemetry messaging semantic conventions (v1.43.0;
// docs/monitoring.md shows the trace):
//
//	receive <topic>   CLIENT, child of the request's creation context (its traceparent), or a new
//	                  trace; from the router handing the message over until it is settled
//	  process <topic> CONSUMER, the handler chain; retries and the poison queue are its events
//	    send <topic>  PRODUCER, each answer or poison record (TracePublisher), whose traceparent
//	                  it becomes
//
// With Tracer nil (export off) it makes no span and only carries the request's trace context
// to its answers: they continue the request's trace, with this service invisible in it.
//
// Put it inside Observe, which then logs the trace and span ids and puts the trace id on its
// histograms as exemplars; Tracing reads Observe's Event to say how the request ended.
type Tracing struct {
	Tracer        trace.Tracer
	ConsumerGroup string
}

// Middleware is the Watermill middleware.
func (t Tracing) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		if t.Tracer == nil {
			if msg.Metadata[HeaderTraceparent] == "" {
				return h(msg) // nothing to carry: nothing to do
			}
			msg.SetContext(traceContext.Extract(ctx, incoming(msg.Metadata)))
			return h(msg)
		}
		parent := traceContext.Extract(ctx, incoming(msg.Metadata))
		ev := EventFrom(msg)
		topic := ev.Source.Topic
		if topic == "" {
			topic = message.SubscribeTopicFromCtx(ctx)
		}
		rctx, receive := t.Tracer.Start(parent, spanName("receive", topic), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingOperationTypeReceive,
				semconv.MessagingOperationName("receive"), semconv.MessagingDestinationName(topic)))
		// Where the record was, on the receive span only, and only when it is sampled: each
		// attribute costs the SDK and the exporter CPU (docs/performance.md, Tracing).
		if receive.IsRecording() {
			var buf [5]attribute.KeyValue
			attrs := append(buf[:0],
				semconv.MessagingDestinationPartitionID(strconv.FormatInt(int64(ev.Source.Partition), 10)),
				semconv.MessagingKafkaOffset(int(ev.Source.Offset)),
				semconv.MessagingConsumerGroupName(t.ConsumerGroup))
			if len(ev.Source.Key) > 0 {
				attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(ev.Source.Key)))
			}
			if ev.CorrelationID != "" {
				attrs = append(attrs, semconv.MessagingMessageConversationID(ev.CorrelationID))
			}
			receive.SetAttributes(attrs...)
		}
		// The process span: the operation and the destination, and below how it ended.
		pctx, process := t.Tracer.Start(rctx, spanName("process", topic), trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(semconv.MessagingSystemKafka, semconv.MessagingOperationTypeProcess,
				semconv.MessagingOperationName("process"), semconv.MessagingDestinationName(topic)))
		if creation := trace.SpanContextFromContext(parent); creation.IsValid() && process.IsRecording() {
			process.AddLink(trace.Link{SpanContext: creation})
		}
		msg.SetContext(pctx)

		answers, err := h(msg)

		endProcess(process, ev, err)
		if err != nil {
			receive.SetAttributes(semconv.ErrorTypeKey.String("nack"))
			receive.SetStatus(codes.Error, "not settled: redelivered")
		}
		receive.End()
		return answers, err
	}
}

// spanNames holds "<operation> <topic>" for each operation and topic, the conventions' span
// names, so that a message does not build its spans' names again: there are three topics.
var spanNames sync.Map

func spanName(operation, topic string) string {
	type key struct{ operation, topic string }
	if name, ok := spanNames.Load(key{operation, topic}); ok {
		return name.(string)
	}
	name := operation + " " + topic
	spanNames.Store(key{operation, topic}, name)
	return name
}

// endProcess says on the process span how the request ended, and ends it.
func endProcess(span trace.Span, ev *Event, err error) {
	if ev.Attempts > 1 {
		span.SetAttributes(attribute.Int("pingpong.attempts", ev.Attempts))
	}
	switch {
	case err != nil:
		span.RecordError(err)
		span.SetAttributes(semconv.ErrorTypeKey.String("nack"))
		span.SetStatus(codes.Error, "neither an answer nor a poison record could be published")
	case ev.Poisoned:
		span.AddEvent("poisoned", trace.WithAttributes(
			attribute.String("pingpong.reason_code", string(ev.ReasonCode)),
			attribute.String("pingpong.reason", ev.Reason)))
		span.SetAttributes(attribute.String("pingpong.outcome", string(outcomeOf(ev.ReasonCode))))
		if ev.ReasonCode != poison.ReasonNotPing && ev.ReasonCode != poison.ReasonMalformed {
			// A rejection is the contract's answer; a failure for good is an error.
			span.SetAttributes(semconv.ErrorTypeKey.String(string(ev.ReasonCode)))
			span.SetStatus(codes.Error, ev.Reason)
		}
	default:
		span.SetAttributes(attribute.String("pingpong.outcome", "pong"))
	}
	span.End()
}

// TraceAttempts records each run of the chain it wraps on the request's span: a failed run with
// its error, a retry that succeeded. Put it just inside Retry, where a run's error is final (a
// failed publish, a recovered panic). A first run that succeeds, nearly every one, costs a test.
func TraceAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		answers, err := h(msg)
		if attempt := EventFrom(msg).Attempts; attempt > 1 || err != nil {
			traceAttempt(msg, attempt, err)
		}
		return answers, err
	}
}

func traceAttempt(msg *message.Message, attempt int, err error) {
	span := trace.SpanFromContext(msg.Context())
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.AddEvent("attempt failed", trace.WithAttributes(attribute.Int("pingpong.attempt", attempt),
			attribute.String("exception.message", err.Error())))
	} else {
		span.AddEvent("attempt succeeded", trace.WithAttributes(attribute.Int("pingpong.attempt", attempt)))
	}
}

// incoming reads a request's trace context, without a tracestate too long to carry on.
func incoming(md message.Metadata) propagation.TextMapCarrier {
	if len(md[HeaderTracestate]) > MaxTracestateBytes {
		return withoutTracestate(md)
	}
	return propagation.MapCarrier(md)
}

type withoutTracestate map[string]string

func (c withoutTracestate) Get(key string) string {
	if key == HeaderTracestate {
		return ""
	}
	return c[key]
}
func (c withoutTracestate) Set(string, string) {}
func (c withoutTracestate) Keys() []string     { return []string{HeaderTraceparent} }

// TracePublisher makes a send span for each message published, a child of the span in the
// message's context (PublishAnswers and PoisonQueue give answers the request's context), and
// writes its trace context into the message's traceparent and tracestate. With tracer nil it
// writes the context the message carries, the request's: see Tracing. Both transports write
// metadata as record headers, so one decorator serves both.
func TracePublisher(pub message.Publisher, tracer trace.Tracer) message.Publisher {
	return tracePublisher{Publisher: pub, tracer: tracer}
}

type tracePublisher struct {
	message.Publisher
	tracer trace.Tracer
}

func (p tracePublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.tracer == nil {
		for _, msg := range msgs {
			traceContext.Inject(msg.Context(), propagation.MapCarrier(msg.Metadata))
		}
		return p.Publisher.Publish(topic, msgs...)
	}
	var one [1]trace.Span
	spans := one[:0]
	if len(msgs) > 1 {
		spans = make([]trace.Span, 0, len(msgs))
	}
	name := spanName("send", topic)
	for _, msg := range msgs {
		var buf [5]attribute.KeyValue
		attrs := append(buf[:0], semconv.MessagingSystemKafka, semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("send"), semconv.MessagingDestinationName(topic))
		if code := msg.Metadata[poison.HeaderReasonCode]; code != "" {
			attrs = append(attrs, attribute.String("pingpong.reason_code", code))
		}
		ctx, span := p.tracer.Start(msg.Context(), name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
		delete(msg.Metadata, HeaderTracestate) // the request's, when a poison record carries it: the span's replaces it
		traceContext.Inject(ctx, propagation.MapCarrier(msg.Metadata))
		spans = append(spans, span)
	}
	err := p.Publisher.Publish(topic, msgs...)
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetAttributes(semconv.ErrorTypeOther)
			span.SetStatus(codes.Error, "not acknowledged by the broker")
		}
		span.End()
	}
	return err
}
