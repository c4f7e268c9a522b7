package middleware

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pingpong/pingpong/poison"
	"github.com/pingpong/pingpong/source"
)

// Event is what the chain learns about one message while handling it. Observe creates it and
// reports it when the chain returns; the middleware inside fill it in.
type Event struct {
	Source        source.Source
	CorrelationID string
	// TransactionID is the request's transaction id as text, once known.
	TransactionID string
	// Attempts counts the handler's runs (1 + retries).
	Attempts int
	// Poisoned is set when the message was answered on the poison queue, ReasonCode and Reason
	// then say why.
	Poisoned   bool
	ReasonCode poison.ReasonCode
	Reason     string
	// Err is the handler's error behind a poisoning, with what the answer leaves out (a panic's
	// stack trace); it goes to the logs.
	Err error
}

type eventKey struct{}

// EventFrom returns the message's Event, attaching a new one if it has none (a middleware used
// without Observe still works).
func EventFrom(msg *message.Message) *Event {
	if ev, ok := msg.Context().Value(eventKey{}).(*Event); ok {
		return ev
	}
	ev := &Event{}
	msg.SetContext(context.WithValue(msg.Context(), eventKey{}, ev))
	return ev
}

// CountAttempts counts each run of the handler it wraps; put it innermost, inside Retry.
func CountAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		EventFrom(msg).Attempts++
		return h(msg)
	}
}
