// Package source describes where a message was read from: the record's topic, partition, offset,
// timestamp and key, or the undecodable batch it stands for. The transports know it and provide
// a Func; the middleware chain reads it for logs, metrics and poison records. It imports no
// Kafka client, so that the chain does not depend on the transport nor the transport on it.
package source

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Source is where a message was read from.
type Source struct {
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the record's timestamp: when the request was produced.
	Timestamp time.Time
	// Key is the record key.
	Key []byte
	// Undecodable is set when the message stands for a batch of records that could not be
	// decoded (Offset is then the batch's first offset), nil for a request.
	Undecodable *UndecodableBatch
	// AbortedAnswers is, in exactly-once mode, how many transactions aborted because this
	// request's answer could not be written; the chain gives up on it past its retries
	// (middleware.GiveUpAfterAbortedAnswers).
	AbortedAnswers int
}

// Func tells where a message was read from. Each transport provides one.
type Func func(msg *message.Message) Source

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
