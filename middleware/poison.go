package middleware

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/poison"
	"github.com/pingpong/pingpong/source"
)

// PoisonQueue answers a request whose handler failed on the poison queue topic. It follows
// Watermill's PoisonQueue middleware (same metadata keys, same place in the chain, the same
// promise: the input is acked only once the poison record is published) but publishes the
// contract's answer as the record value, with the request's bytes in a header, rather than the
// request itself, and adds the headers an operator needs to inspect and replay it.
type PoisonQueue struct {
	Publisher message.Publisher
	Topic     string
	// MaxOriginalBytes bounds the bytes of the request a poison record carries: its value,
	// its key and its own headers together, so that the poison record stays publishable
	// whatever the request holds; <= 0 means no bound.
	MaxOriginalBytes int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Middleware is the Watermill middleware.
func (pq PoisonQueue) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		answers, err := h(msg)
		if err == nil {
			return answers, nil
		}
		if ctxErr := msg.Context().Err(); ctxErr != nil {
			// Shutting down: the failure says nothing about the request. Leave it unacked, so
			// it is redelivered rather than poisoned.
			return nil, err
		}
		ev := EventFrom(msg)
		record := pq.record(msg, ev, err)
		if perr := pq.Publisher.Publish(pq.Topic, record); perr != nil {
			return nil, errors.Join(err, fmt.Errorf("cannot publish to the poison queue %s: %w", pq.Topic, perr))
		}
		return nil, nil
	}
}

func (pq PoisonQueue) record(msg *message.Message, ev *Event, handlerErr error) *message.Message {
	code, reason, answer, id := classify(msg.Payload, handlerErr)
	ev.Poisoned, ev.ReasonCode, ev.Reason, ev.Err = true, code, reason, handlerErr

	record := message.NewMessage(handlers.NewID(), answer)
	// Sized for the dozen headers set below and some of the request's own: grown from empty, the
	// map was rebuilt twice, a fifth of the chain's CPU on a rejection (BenchmarkChain/not-ping).
	record.Metadata = make(message.Metadata, len(serviceHeaders)+min(len(msg.Metadata), 16))
	record.SetContext(msg.Context())
	ctx := msg.Context()
	src := ev.Source
	if src.Topic == "" {
		src.Topic = message.SubscribeTopicFromCtx(ctx)
	}
	if src.Undecodable != nil {
		// There is no request to carry: the batch's records were never decoded.
		record.Metadata.Set(poison.HeaderOriginalOmitted, fmt.Sprintf("the record batch of offsets %d to %d could not be decoded; its records are not carried",
			src.Undecodable.FirstOffset, src.Undecodable.LastOffset))
		record.Metadata.Set(poison.HeaderLastOffset, strconv.FormatInt(src.Undecodable.LastOffset, 10))
		if raw := src.Undecodable.Raw; len(raw) > 0 && (pq.MaxOriginalBytes <= 0 || len(raw) <= pq.MaxOriginalBytes) {
			record.Metadata.Set(poison.HeaderOriginalBatch, string(raw))
		}
	} else {
		pq.carry(record, msg, src.Key)
	}
	if id != nil {
		ev.TransactionID = handlers.TransactionIDKey(id)
		record.Metadata.Set(handlers.TransactionIDMetadataKey, ev.TransactionID)
	} else {
		delete(record.Metadata, handlers.TransactionIDMetadataKey)
	}

	now := time.Now
	if pq.Now != nil {
		now = pq.Now
	}
	set := record.Metadata.Set
	set(poison.HeaderReason, reason)
	set(poison.HeaderReasonCode, string(code))
	set(poison.HeaderTopic, src.Topic)
	set(poison.HeaderHandler, message.HandlerNameFromCtx(ctx))
	set(poison.HeaderSubscriber, message.SubscriberNameFromCtx(ctx))
	set(poison.HeaderPartition, strconv.FormatInt(int64(src.Partition), 10))
	set(poison.HeaderOffset, strconv.FormatInt(src.Offset, 10))
	if !src.Timestamp.IsZero() {
		set(poison.HeaderSourceTimestamp, src.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	set(poison.HeaderAttempts, strconv.Itoa(max(ev.Attempts, 1)))
	set(poison.HeaderFailedAt, now().UTC().Format(time.RFC3339Nano))
	if ev.CorrelationID != "" {
		set(poison.HeaderCorrelationID, ev.CorrelationID)
	}
	return record
}

// serviceHeaders are the headers the service sets on a poison record. The request's own headers
// of these names are never carried: a request cannot forge what describes it. The replay headers
// are not among them: `pingpong dlq replay` sets them on the requests it sends, and bounds
// replays with them.
var serviceHeaders = map[string]bool{
	poison.HeaderReason: true, poison.HeaderTopic: true, poison.HeaderHandler: true, poison.HeaderSubscriber: true,
	poison.HeaderReasonCode: true, poison.HeaderPartition: true, poison.HeaderOffset: true, poison.HeaderSourceTimestamp: true,
	poison.HeaderAttempts: true, poison.HeaderFailedAt: true, poison.HeaderOriginal: true, poison.HeaderOriginalKey: true,
	poison.HeaderOriginalOmitted: true, poison.HeaderCorrelationID: true, handlers.TransactionIDMetadataKey: true,
	poison.HeaderLastOffset: true, poison.HeaderOriginalBatch: true,
}

// maxReplayHeaderBytes bounds the replay headers carried outside MaxOriginalBytes: a count and a
// "<topic>:<partition>:<offset>" are short.
const maxReplayHeaderBytes = 512

// carry puts the request on the poison record: its value (poison.HeaderOriginal), its key
// (poison.HeaderOriginalKey) and, as Watermill's PoisonQueue does, its own headers, in that order of
// use to an operator, while they fit MaxOriginalBytes together. When the value does not fit,
// poison.HeaderOriginalOmitted replaces it and names all that was left out. So a request with huge headers or a huge key (a compressed batch can
// bring the broker many times its message.max.bytes of them) cannot make its poison record too
// large to publish, which would leave it unanswerable and its partition blocked.
func (pq PoisonQueue) carry(record, msg *message.Message, key []byte) {
	budget := pq.MaxOriginalBytes
	fits := func(n int) bool {
		if pq.MaxOriginalBytes <= 0 {
			return true
		}
		if n > budget {
			return false
		}
		budget -= n
		return true
	}
	var omitted []string
	// The value and the key count their bytes (their two headers' names and lengths are a fixed
	// few bytes, within config.PoisonOverheadBytes); the request's own headers count as they are
	// encoded in the Kafka record, below.
	valueCarried := fits(len(msg.Payload))
	if valueCarried {
		record.Metadata.Set(poison.HeaderOriginal, string(msg.Payload))
	} else {
		omitted = append(omitted, fmt.Sprintf("its value (%d bytes)", len(msg.Payload)))
	}
	if len(key) > 0 {
		if fits(len(key)) {
			record.Metadata.Set(poison.HeaderOriginalKey, string(key))
		} else {
			omitted = append(omitted, fmt.Sprintf("its key (%d bytes)", len(key)))
		}
	}
	names := make([]string, 0, len(msg.Metadata))
	for k, v := range msg.Metadata {
		switch {
		case serviceHeaders[k]:
		case (k == poison.HeaderReplayCount || k == poison.HeaderReplayedFrom) && len(v) <= maxReplayHeaderBytes:
			// Always carried: without them a replayed request could be replayed for ever.
			record.Metadata.Set(k, v)
		default:
			names = append(names, k)
		}
	}
	// The smallest first, so that one huge header does not crowd out the others.
	// A header counts its encoded size, with the varints of its key's and value's lengths:
	// 201,303 tiny headers counted as len(key)+len(value) made a poison record of 1,002,547
	// bytes out of a 524,288-byte budget.
	size := func(k string) int { return encodedHeaderBytes(k, len(msg.Metadata[k])) }
	slices.SortFunc(names, func(x, y string) int {
		return cmp.Or(cmp.Compare(size(x), size(y)), strings.Compare(x, y))
	})
	dropped, droppedBytes := 0, 0
	for _, k := range names {
		if fits(size(k)) {
			record.Metadata.Set(k, msg.Metadata[k])
		} else {
			dropped++
			droppedBytes += size(k)
		}
	}
	if dropped > 0 {
		omitted = append(omitted, fmt.Sprintf("%d of its headers (%d bytes)", dropped, droppedBytes))
	}
	// poison.HeaderOriginalOmitted keeps its stable meaning: present when poison.HeaderOriginal is not (the
	// operator tools do not replay such a record). It then lists all that was left out.
	if !valueCarried {
		record.Metadata.Set(poison.HeaderOriginalOmitted, fmt.Sprintf("the request is %d bytes, above the %d that a poison record carries; not carried: %s",
			requestBytes(msg, key), pq.MaxOriginalBytes, strings.Join(omitted, ", ")))
	}
}

// encodedHeaderBytes is the size of a record header in Kafka's record format: the varint of the
// key's length, the key, the varint of the value's length, the value.
func encodedHeaderBytes(key string, valueLen int) int {
	return varintBytes(len(key)) + len(key) + varintBytes(valueLen) + valueLen
}

// varintBytes is the length of n as a zig-zag varint, as Kafka encodes lengths in records.
func varintBytes(n int) int {
	u := uint64(n) << 1
	size := 1
	for u >= 0x80 {
		u >>= 7
		size++
	}
	return size
}

// requestBytes is the size of a request's value, key and headers.
func requestBytes(msg *message.Message, key []byte) int {
	n := len(msg.Payload) + len(key)
	for k, v := range msg.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// classify turns a handler error into the poison record's reason and answer.
func classify(request []byte, err error) (code poison.ReasonCode, reason string, answer []byte, id []byte) {
	var rejection *handlers.Rejection
	if errors.As(err, &rejection) {
		code = poison.ReasonMalformed
		if rejection.Outcome == handlers.OutcomeNotPing {
			code = poison.ReasonNotPing
		}
		return code, rejection.Reason, rejection.Answer, rejection.TransactionID
	}

	var batch *source.UndecodableBatch
	if errors.As(err, &batch) {
		return poison.ReasonUndecodableBatch, batch.Error(), handlers.MalformedAnswer(), nil
	}

	// Processing failed for good. The answer carries the transaction id when one can be read.
	if req, decodeErr := handlers.Decode(request, -1); decodeErr == nil {
		id = req.TransactionID
	} else if errors.As(decodeErr, &rejection) {
		id = rejection.TransactionID
	}
	code, reason = poison.ReasonRetriesExhausted, err.Error()
	var panicked wmmiddleware.RecoveredPanicError
	if errors.As(err, &panicked) {
		// The stack trace goes to the logs, not into an answer that clients read.
		code, reason = poison.ReasonPanic, fmt.Sprintf("panic: %v", panicked.V)
	}
	return code, reason, handlers.ProcessingErrorAnswer(id, reason), id
}

// Transient is the Retry middleware's ShouldRetry: a Rejection is final and a panic would only
// panic again, everything else (a publish that failed, a broker that timed out) may pass.
func Transient(params wmmiddleware.RetryParams) bool {
	// One errors.As a function: each target escapes to the heap where it is declared, so the
	// common failure, a rejection, allocates one target rather than three.
	return !isRejection(params.Err) &&
		!isUndecodable(params.Err) &&
		!isPanic(params.Err) &&
		!errors.Is(params.Err, context.Canceled)
}

func isRejection(err error) bool {
	var rejection *handlers.Rejection
	return errors.As(err, &rejection)
}

func isUndecodable(err error) bool {
	var batch *source.UndecodableBatch
	return errors.As(err, &batch)
}

func isPanic(err error) bool {
	var panicked wmmiddleware.RecoveredPanicError
	return errors.As(err, &panicked)
}
