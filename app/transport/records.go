package transport

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/flow"
	"github.com/pingpong/pingpong/source"
)

// undecodableWhy is the reason given for an undecodable batch of codec.
func (c *consumer) undecodableWhy(codec kgo.CompressionCodecType, err error) string {
	names := map[kgo.CompressionCodecType]string{kgo.CodecGzip: "gzip", kgo.CodecSnappy: "snappy", kgo.CodecLz4: "lz4", kgo.CodecZstd: "zstd"}
	name, known := names[codec]
	if !known {
		return fmt.Sprintf("its compression codec %d is unknown", codec)
	}
	return fmt.Sprintf("%s: %v", name, err)
}

// OnFetchRecordBuffered implements kgo.HookFetchRecordBuffered. A record of an uncompressed batch
// holds its bytes in the fetch response, which no decompressor counted: it is counted from here
// until it is recycled.
func (c *consumer) OnFetchRecordBuffered(r *kgo.Record) {
	if r.Attrs.CompressionType() == 0 {
		c.budget.Force(recordBytes(r))
	}
}

// OnFetchRecordUnbuffered implements kgo.HookFetchRecordUnbuffered: a record franz-go drops
// without returning it (its partition revoked or skipped) is recycled here. The records a poll
// takes are kept for recycleStripped: franz-go says "polled" of the records of a paused partition
// too, and then strips them from what the poll returns. It calls this on the polling goroutine
// for those, so c.polled needs no lock.
func (c *consumer) OnFetchRecordUnbuffered(r *kgo.Record, polled bool) {
	if polled {
		c.polled = append(c.polled, r)
		return
	}
	c.recycle(r)
}

// recycleStripped recycles the records a poll took from franz-go's buffer but did not return:
// those of partitions paused meanwhile, which franz-go drops and fetches again on resume.
func (c *consumer) recycleStripped(fetches kgo.Fetches) {
	if returned := fetches.NumRecords(); returned != len(c.polled) {
		kept := make(map[*kgo.Record]struct{}, returned)
		fetches.EachRecord(func(r *kgo.Record) { kept[r] = struct{}{} })
		for _, r := range c.polled {
			if _, ok := kept[r]; !ok {
				c.recycle(r)
			}
		}
	}
	clear(c.polled)
	c.polled = c.polled[:0]
}

// recycle releases what a record holds of the budget once the subscriber is done with it: its
// own bytes when its batch was uncompressed, its share of its decoded batch otherwise.
func (c *consumer) recycle(r *kgo.Record) {
	if r.Attrs.CompressionType() == 0 {
		c.budget.Release(recordBytes(r))
	}
	r.Recycle()
}

// recordBytes is the bytes a record's key, value and headers take.
func recordBytes(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// franzSourceKey and deliveryKey are the keys of a message's source and its delivery in its
// context (messageContext).
type (
	franzSourceKey struct{}
	deliveryKey    struct{}
)

// messageContext is the context the subscriber gives a message: the consumer's, with the
// message's source and its delivery (which the publisher tells when the answer is queued). One
// allocation, where two context.WithValue layers were two, and a third for the source boxed.
type messageContext struct {
	context.Context
	src      any // source.Source, boxed once
	delivery flow.Delivery
}

func (c *consumer) newMessageContext(src source.Source) *messageContext {
	return &messageContext{Context: c.msgCtx, src: src}
}

// redelivery is a context for the same message delivered again.
func (m *messageContext) redelivery() *messageContext {
	return &messageContext{Context: m.Context, src: m.src}
}

func (m *messageContext) Value(key any) any {
	switch key.(type) {
	case franzSourceKey:
		return m.src
	case deliveryKey:
		return &m.delivery // a pointer: boxing it allocates nothing
	}
	return m.Context.Value(key)
}

// messageContext gives the message of rec its source. key is the message's one copy of the
// record key, shared read-only by its source and its ordering key in the engine: a key is
// counted once in the budget (with the request), and keys of 100 KB copied twice more made
// the process's peak a third larger than values of the same size.
func (c *consumer) messageContext(rec *kgo.Record, key string) *messageContext {
	src := source.Source{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp, Key: readOnlyBytes(key)}
	if e := c.cfg.ExactlyOnce; e != nil {
		src.AbortedAnswers = e.abortedAnswers(rec.Partition, rec.Offset)
	}
	return c.newMessageContext(src)
}

// readOnlyBytes is s's bytes, without a copy; they must not be written.
func readOnlyBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// toMessage reads a record with watermill-kafka's DefaultMarshaler conventions. The value is
// copied: a record's value points into its whole fetched batch, which would otherwise stay in
// memory for as long as any of its messages is in flight.
func (c *consumer) toMessage(rec *kgo.Record) *outgoing {
	key := string(rec.Key)
	var uuid string
	metadata := make(message.Metadata, len(rec.Headers))
	for _, h := range rec.Headers {
		if h.Key == uuidHeader {
			uuid = string(h.Value)
			continue
		}
		// Copies of the key and value: the record's bytes go back to franz-go (Recycle).
		metadata.Set(strings.Clone(h.Key), string(h.Value))
	}
	msg := message.NewMessage(uuid, bytes.Clone(rec.Value))
	msg.Metadata = metadata
	ctx := c.messageContext(rec, key)
	msg.SetContext(ctx)
	return &outgoing{msg: msg, ctx: ctx, key: key}
}

// FranzSource tells where a FranzSubscriber's message came from.
func FranzSource(msg *message.Message) source.Source {
	if src, ok := msg.Context().Value(franzSourceKey{}).(source.Source); ok {
		return src
	}
	return source.Source{Topic: message.SubscribeTopicFromCtx(msg.Context())}
}

// formatBytes writes n in MiB when it is a whole number of them, in bytes otherwise.
func formatBytes(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
