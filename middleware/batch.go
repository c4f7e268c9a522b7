package middleware

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
)

// UndecodableBatch is a batch of records that the transport read but could not decode within
// the instance's memory budget: it decompresses past the budget, its compressed data is corrupt,
// or its codec is unknown. The transport delivers one message standing for the whole batch (its
// Source says so), and skips the batch, so that the partition moves on; the chain answers that
// message on the poison queue, and only once that poison record is acknowledged is the batch's
// last offset committed.
type UndecodableBatch struct {
	FirstOffset, LastOffset int64
	// Why says what failed, for people.
	Why string
	// Raw is the batch as the broker stores it, compressed.
	Raw []byte
}

func (b *UndecodableBatch) Error() string {
	return fmt.Sprintf("the record batch of offsets %d to %d cannot be decoded: %s", b.FirstOffset, b.LastOffset, b.Why)
}

// RejectUndecodableBatches is the innermost middleware: a message that stands for an
// undecodable batch fails for good without reaching the handler, which has no request to read.
func RejectUndecodableBatches(source SourceFunc) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if source == nil {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			if batch := source(msg).Undecodable; batch != nil {
				return nil, batch
			}
			return h(msg)
		}
	}
}
