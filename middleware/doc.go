// Package middleware is the service's Watermill middleware and the glue around Watermill's own.
//
// The handler chain, outermost first (app/service wires it), below two router middleware:
// GrowStack, which grows the handler goroutine's stack once, and RouterMetrics, which records
// Watermill's metrics series:
//
//	Observe          one Event per message: correlation id, logs, metrics
//	Tracing          OpenTelemetry spans (receive, process), or only the trace context carried over
//	PoisonQueue      a handler error becomes an answer on .failed with headers that say why
//	GiveUpAfterAbortedAnswers
//	                 exactly-once: a request whose answer failed in more transactions than the
//	                 retries allow fails here, and is poisoned
//	Retry            Watermill's, with ShouldRetry = Transient: rejections and panics are not retried;
//	                 entered only after a first failure (RetryAfterFirstFailure)
//	TraceAttempts    each failed run and each retry as an event of the request's span
//	Recoverer        Watermill's: a panic becomes an error
//	PublishAnswers   publishes the handler's answers inside the chain, so a failed publish is retried
//	CorrelationID    Watermill's: answers carry the request's correlation id
//	CountAttempts    counts handler runs for the attempts header
//	RejectUndecodableBatches
//	                 a message standing for an undecodable batch fails for good here, without
//	                 reaching the handler, which has no request to read
//	handler
//
// The Watermill router publishes a handler's messages after the whole chain has returned, where a
// failure can only nack the message. Publishing inside the chain is what lets Retry and the poison
// queue see a failed publish, and it keeps the at-least-once promise: the router acks the input,
// and the subscriber commits its offset, only after the answer or the poison record is
// acknowledged by the broker.
package middleware
