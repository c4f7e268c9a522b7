package middleware

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/trace"

	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/poison"
	"github.com/pingpong/pingpong/source"
)

// MaxCorrelationIDBytes bounds the correlation id taken from a request; a request with a longer
// one gets a new one, as a request without one does.
const MaxCorrelationIDBytes = 256

// Observe is the outermost middleware: it gives each message an Event and a correlation id, and
// when the chain returns it logs the event and records it in the metrics.
type Observe struct {
	Logger  *logrus.Entry
	Metrics *Metrics
	// Source tells where a message was read from; nil leaves the Event's Source empty.
	Source source.Func
}

// Middleware is the Watermill middleware.
func (o Observe) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		start := time.Now()
		ev := EventFrom(msg)
		if o.Source != nil {
			ev.Source = o.Source(msg)
		}
		// Requests from other teams rarely carry one; answers and logs need one to be followed.
		// One too long to be an id is replaced rather than copied into every answer and log line.
		id := wmmiddleware.MessageCorrelationID(msg)
		if id == "" || len(id) > MaxCorrelationIDBytes {
			id = handlers.NewID()
			msg.Metadata.Set(wmmiddleware.CorrelationIDMetadataKey, id)
		}
		ev.CorrelationID = id

		o.Metrics.InFlight.Inc()
		answers, err := h(msg)
		o.Metrics.InFlight.Dec()
		o.record(msg, ev, start, err)
		return answers, err
	}
}

func (o Observe) record(msg *message.Message, ev *Event, start time.Time, err error) {
	m := o.Metrics
	span := trace.SpanContextFromContext(msg.Context())
	observe(m.Duration, m.durationExemplars, time.Since(start).Seconds(), span)
	if ev.Attempts > 1 {
		m.Retries.Add(float64(ev.Attempts - 1))
	}
	if err != nil {
		m.Nacks.Inc()
		if errors.Is(err, context.Canceled) {
			// The transport gave the request up (its transaction aborted, its key rewound, or
			// the service is stopping), not a failure: one line each would flood the log when
			// a transaction of thousands aborts. The abort itself is logged.
			o.log(logrus.DebugLevel, msg, ev, err, "Gave up answering the request; it will be delivered again")
			return
		}
		o.log(logrus.ErrorLevel, msg, ev, err, "Could not answer the request; it stays uncommitted and will be redelivered")
		return
	}
	outcome := handlers.OutcomePong
	if ev.Poisoned {
		m.Poisoned.WithLabelValues(string(ev.ReasonCode)).Inc()
		outcome = outcomeOf(ev.ReasonCode)
	}
	m.Requests.WithLabelValues(string(outcome)).Inc()
	if !ev.Source.Timestamp.IsZero() {
		observe(m.EndToEnd, m.endToEndExemplars, time.Since(ev.Source.Timestamp).Seconds(), span)
	}

	switch ev.ReasonCode {
	case "":
		if ev.Attempts > 1 {
			o.log(logrus.WarnLevel, msg, ev, nil, "Answered pong after retrying a transient failure")
		} else {
			o.log(logrus.DebugLevel, msg, ev, nil, "Answered pong")
		}
	case poison.ReasonNotPing, poison.ReasonMalformed:
		o.log(logrus.InfoLevel, msg, ev, nil, "Rejected the request; answered on the poison queue")
	case poison.ReasonPanic:
		m.Panics.Inc()
		o.log(logrus.ErrorLevel, msg, ev, ev.Err, "The handler panicked; the request was poisoned")
	default:
		o.log(logrus.ErrorLevel, msg, ev, ev.Err, "Processing failed for good; the request was poisoned")
	}
}

// log writes the event's line. The fields are built only when the level is enabled: most
// messages are pongs, logged at debug, and building fields for nothing costs real CPU per message.
func (o Observe) log(level logrus.Level, msg *message.Message, ev *Event, err error, text string) {
	logger := o.Logger.Logger
	if !logger.IsLevelEnabled(level) {
		return
	}
	fields := logrus.Fields{
		"transaction_id": ev.TransactionID,
		"correlation_id": ev.CorrelationID,
		"topic":          ev.Source.Topic,
		"partition":      ev.Source.Partition,
		"offset":         ev.Source.Offset,
	}
	if span := trace.SpanContextFromContext(msg.Context()); span.IsValid() {
		fields["trace_id"], fields["span_id"] = span.TraceID().String(), span.SpanID().String()
	}
	if ev.Attempts > 1 {
		fields["attempts"] = ev.Attempts
	}
	if ev.Poisoned {
		fields["reason_code"], fields["reason"] = ev.ReasonCode, ev.Reason
	}
	if logger.IsLevelEnabled(logrus.DebugLevel) {
		fields["payload"] = string(msg.Payload)
	}
	entry := o.Logger.WithFields(fields)
	if err != nil {
		entry = entry.WithError(err)
	}
	entry.Log(level, text)
}

// ExemplarTraceID is the exemplar label of a trace id, the one Grafana's Prometheus datasource
// links to the trace (deployments/grafana, exemplarTraceIdDestinations).
const ExemplarTraceID = "trace_id"

// observe records v in h, with the trace id as its exemplar when the request's trace is sampled
// (and limit allows one): a slow bucket then links to a trace that shows where the time went.
func observe(h prometheus.Histogram, limit *exemplarLimiter, v float64, span trace.SpanContext) {
	if span.IsSampled() && (limit == nil || limit.allow(v, time.Now())) {
		if e, ok := h.(prometheus.ExemplarObserver); ok {
			e.ObserveWithExemplar(v, prometheus.Labels{ExemplarTraceID: span.TraceID().String()})
			return
		}
	}
	h.Observe(v)
}

func outcomeOf(code poison.ReasonCode) handlers.Outcome {
	switch code {
	case poison.ReasonNotPing:
		return handlers.OutcomeNotPing
	case poison.ReasonMalformed:
		return handlers.OutcomeMalformed
	default:
		return handlers.OutcomeError
	}
}
