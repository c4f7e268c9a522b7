// Package dlq reads the poison queue, <prefix>.failed, for the operator tools: it decodes each
// record's headers (docs/poison-queue.md) into a Record, selects records by time, position,
// reason and transaction id, counts them, and replays their original requests to
// <prefix>.requested.
//
// It reads partitions directly, never in a consumer group, so that looking at the queue commits
// nothing and moves no one's offsets. It depends only on the record format, not on how the
// service talks to Kafka.
package dlq

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/poison"
)

// Record is one record of the poison queue with its headers decoded.
type Record struct {
	// Where the poison record is.
	Topic     string
	Partition int32
	Offset    int64
	// Timestamp is the poison record's timestamp: when it was poisoned.
	Timestamp time.Time
	Key       []byte
	// Answer is the record value: the answer the client got.
	Answer []byte

	// ReasonCode is pingpong_reason_code; empty on records from before the headers existed.
	ReasonCode string
	// Reason is reason_poisoned: why, for people.
	Reason     string
	Handler    string
	Subscriber string

	// The request that failed: topic_poisoned and pingpong_source_*. SourcePartition and
	// SourceOffset are -1 when unknown.
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	SourceTimestamp time.Time

	Attempts int
	FailedAt time.Time

	// Original is the request's bytes (pingpong_original); HasOriginal tells an empty request
	// (a tombstone) from a missing header.
	Original    []byte
	HasOriginal bool
	// OriginalKey is the request's record key (pingpong_original_key), when it had one.
	OriginalKey    []byte
	HasOriginalKey bool
	// OriginalOmitted says why the request was not carried (it was too large).
	OriginalOmitted string

	TransactionID string
	CorrelationID string
	// ReplayCount is how often the request had been replayed when it failed (0: never).
	ReplayCount  int
	ReplayedFrom string

	// Headers are all the record's headers, as read.
	Headers []kgo.RecordHeader
}

// serviceHeaders are the headers the service sets on every poison record. The others are the
// request's own headers, which the poison record keeps and a replay sends again. The
// correlation id is not among them: the service takes it from the request when it has one, and
// a replay keeps it so that it can be traced to its first attempt.
var serviceHeaders = map[string]bool{
	poison.HeaderReason:               true,
	poison.HeaderTopic:                true,
	poison.HeaderHandler:              true,
	poison.HeaderSubscriber:           true,
	poison.HeaderReasonCode:           true,
	poison.HeaderPartition:            true,
	poison.HeaderOffset:               true,
	poison.HeaderSourceTimestamp:      true,
	poison.HeaderAttempts:             true,
	poison.HeaderFailedAt:             true,
	poison.HeaderOriginal:             true,
	poison.HeaderOriginalKey:          true,
	poison.HeaderOriginalOmitted:      true,
	poison.HeaderReplayCount:          true,
	poison.HeaderReplayedFrom:         true,
	handlers.TransactionIDMetadataKey: true,
	watermillUUIDHeader:               true,
}

// watermillUUIDHeader is where watermill-kafka's marshaler puts the message's UUID.
const watermillUUIDHeader = "_watermill_message_uuid"

// Decode reads a poison record. Headers that are missing or unreadable leave their field at its
// zero value (-1 for the source position); Headers keeps them all as read.
func Decode(r *kgo.Record) Record {
	rec := Record{
		Topic:           r.Topic,
		Partition:       r.Partition,
		Offset:          r.Offset,
		Timestamp:       r.Timestamp.UTC(),
		Key:             r.Key,
		Answer:          r.Value,
		SourcePartition: -1,
		SourceOffset:    -1,
		Headers:         r.Headers,
	}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case poison.HeaderReasonCode:
			rec.ReasonCode = v
		case poison.HeaderReason:
			rec.Reason = v
		case poison.HeaderHandler:
			rec.Handler = v
		case poison.HeaderSubscriber:
			rec.Subscriber = v
		case poison.HeaderTopic:
			rec.SourceTopic = v
		case poison.HeaderPartition:
			if n, err := strconv.ParseInt(v, 10, 32); err == nil {
				rec.SourcePartition = int32(n)
			}
		case poison.HeaderOffset:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				rec.SourceOffset = n
			}
		case poison.HeaderSourceTimestamp:
			rec.SourceTimestamp = parseTime(v)
		case poison.HeaderAttempts:
			rec.Attempts, _ = strconv.Atoi(v)
		case poison.HeaderFailedAt:
			rec.FailedAt = parseTime(v)
		case poison.HeaderOriginal:
			rec.Original, rec.HasOriginal = h.Value, true
		case poison.HeaderOriginalKey:
			rec.OriginalKey, rec.HasOriginalKey = h.Value, true
		case poison.HeaderOriginalOmitted:
			rec.OriginalOmitted = v
		case handlers.TransactionIDMetadataKey:
			rec.TransactionID = v
		case poison.HeaderCorrelationID:
			rec.CorrelationID = v
		case poison.HeaderReplayCount:
			rec.ReplayCount, _ = strconv.Atoi(v)
		case poison.HeaderReplayedFrom:
			rec.ReplayedFrom = v
		}
	}
	return rec
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Legacy tells a record from before the poison headers existed: it says neither why it failed
// nor what the request was.
func (r Record) Legacy() bool { return r.ReasonCode == "" && !r.HasOriginal && r.OriginalOmitted == "" }

// Position is the poison record's "<partition>:<offset>", as `pingpong dlq show` takes it.
func (r Record) Position() string {
	return strconv.FormatInt(int64(r.Partition), 10) + ":" + strconv.FormatInt(r.Offset, 10)
}

// Address is "<topic>:<partition>:<offset>" of the poison record, the pingpong_replayed_from
// of its replay.
func (r Record) Address() string { return r.Topic + ":" + r.Position() }

// Source is "<topic>:<partition>:<offset>" of the request that failed, or "" when unknown.
func (r Record) Source() string {
	if r.SourceTopic == "" && r.SourceOffset < 0 {
		return ""
	}
	return r.SourceTopic + ":" + strconv.FormatInt(int64(r.SourcePartition), 10) + ":" + strconv.FormatInt(r.SourceOffset, 10)
}

// RequestHeaders are the request's own headers, which the poison record keeps: every header
// but those the service sets. The correlation id is among them, so that a replay can be traced
// to its first attempt.
func (r Record) RequestHeaders() []kgo.RecordHeader {
	var kept []kgo.RecordHeader
	for _, h := range r.Headers {
		if !serviceHeaders[h.Key] {
			kept = append(kept, h)
		}
	}
	return kept
}
