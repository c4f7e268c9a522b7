package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pingpong/pingpong/source"
)

// RejectUndecodableBatches is the innermost middleware: a message that stands for an
// undecodable batch fails for good without reaching the handler, which has no request to read.
func RejectUndecodableBatches(sourceOf source.Func) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if sourceOf == nil {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			if batch := sourceOf(msg).Undecodable; batch != nil {
				return nil, batch
			}
			return h(msg)
		}
	}
}
