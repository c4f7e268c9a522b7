package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/source"
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
	Source source.Func
	// Tracing makes the request's spans; its zero value only carries a request's trace context
	// to its answers. Publisher must be a TracePublisher of the same tracer.
	Tracing Tracing
}

// Chain wraps h in the middleware, in the order the package documentation gives.
func Chain(h message.HandlerFunc, c ChainConfig) message.HandlerFunc {
	outermostFirst := links(c)
	for i := len(outermostFirst) - 1; i >= 0; i-- {
		h = outermostFirst[i].wrap(h)
	}
	return h
}

// link is one middleware of the chain and the name the documentation gives it.
type link struct {
	name string
	wrap message.HandlerMiddleware
}

// links is the chain, outermost first; the documentation's tables are held to these names.
func links(c ChainConfig) []link {
	retry := c.Retry
	retry.ShouldRetry = Transient
	poisonQueue := PoisonQueue{Publisher: c.Publisher, Topic: c.FailedTopic, MaxOriginalBytes: c.MaxOriginalBytes}
	observe := Observe{Logger: c.Logger, Metrics: c.Metrics, Source: c.Source}
	traceAttempts := func(h message.HandlerFunc) message.HandlerFunc { return h }
	if c.Tracing.Tracer != nil { // with tracing off there is no span to record them on
		traceAttempts = TraceAttempts
	}
	return []link{
		{"Observe", observe.Middleware},
		{"Tracing", c.Tracing.Middleware},
		{"PoisonQueue", poisonQueue.Middleware},
		{"GiveUpAfterAbortedAnswers", GiveUpAfterAbortedAnswers(c.Source, retry.MaxRetries)},
		{"Retry", RetryAfterFirstFailure(retry)},
		{"TraceAttempts", traceAttempts},
		{"Recoverer", wmmiddleware.Recoverer},
		{"PublishAnswers", PublishAnswers(c.Publisher, c.SucceededTopic)},
		{"CorrelationID", wmmiddleware.CorrelationID},
		{"CountAttempts", CountAttempts},
		{"RejectUndecodableBatches", RejectUndecodableBatches(c.Source)},
	}
}
