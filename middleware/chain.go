package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/sirupsen/logrus"
)

// ChainConfig is what the handler chain needs.
type ChainConfig struct {
	// Publisher publishes the answers and the poison records.
	Publisher      message.Publisher
	SucceededTopic string
	FailedTopic    string
	// Retry is Watermill's Retry middleware; its ShouldRetry is set to Transient.
	Retry wmmiddleware.Retry
	// MaxOriginalBytes bounds the request bytes a poison record carries; see PoisonQueue.
	MaxOriginalBytes int
	Logger           *logrus.Entry
	Metrics          *Metrics
	// Source tells where a message was read from; the transport provides it.
	Source SourceFunc
	// Tracing makes the request's spans; its zero value only carries a request's trace context
	// to its answers. Publisher must be a TracePublisher of the same tracer.
	Tracing Tracing
}

// Chain wraps h in the middleware, in the order the package documentation gives.
func Chain(h message.HandlerFunc, c ChainConfig) message.HandlerFunc {
	retry := c.Retry
	retry.ShouldRetry = Transient
	poison := PoisonQueue{Publisher: c.Publisher, Topic: c.FailedTopic, MaxOriginalBytes: c.MaxOriginalBytes}
	observe := Observe{Logger: c.Logger, Metrics: c.Metrics, Source: c.Source}
	traceAttempts := func(h message.HandlerFunc) message.HandlerFunc { return h }
	if c.Tracing.Tracer != nil { // with tracing off there is no span to record them on
		traceAttempts = TraceAttempts
	}
	outermostFirst := []message.HandlerMiddleware{
		observe.Middleware,
		c.Tracing.Middleware,
		poison.Middleware,
		RetryAfterFirstFailure(retry),
		traceAttempts,
		wmmiddleware.Recoverer,
		PublishAnswers(c.Publisher, c.SucceededTopic),
		wmmiddleware.CorrelationID,
		CountAttempts,
		RejectUndecodableBatches(c.Source),
	}
	for i := len(outermostFirst) - 1; i >= 0; i-- {
		h = outermostFirst[i](h)
	}
	return h
}
