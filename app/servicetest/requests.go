package servicetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/poison"
)

// Request is a request the tests send and the answer it must get.
type Request struct {
	// Tag identifies the request: its transaction id where it has one, and a part of its body.
	Tag       string
	Body      []byte
	Partition int32
	// Topic and Answer are where the answer must appear and its exact value.
	Topic  string
	Answer string
	// ReasonCode is the poison header's reason code for an answer on .failed.
	ReasonCode poison.ReasonCode
	// Key is the request's record key, if ProduceBatches is to write one.
	Key []byte
}

// Mix makes n requests spread round-robin over partitions: of every ten, six pings (string and
// numeric ids), two non-pings and two malformed events. Tags are unique within a run (prefix
// them with run to tell runs apart).
func Mix(run string, n, partitions int) []Request {
	reqs := make([]Request, 0, n)
	for i := range n {
		tag := fmt.Sprintf("%s-%d", run, i)
		id := json.RawMessage(fmt.Sprintf("%q", tag))
		r := Request{Tag: tag, Partition: int32(i % partitions)}
		switch i % 10 {
		case 0, 1, 2, 3, 4:
			r.Body = []byte(fmt.Sprintf(`{"transaction-id": %s, "payload": {"message": "ping"}}`, id))
			r.Topic, r.Answer = Topics.Succeeded, string(handlers.PongAnswer(id))
		case 5:
			// A numeric id cannot carry the run's tag; the body's extra field does.
			num := json.RawMessage(fmt.Sprintf("%d%06d", len(run), i))
			r.Tag = string(num) + "/" + tag
			r.Body = []byte(fmt.Sprintf(`{"transaction-id": %s, "tag": %q, "payload": {"message": "ping"}}`, num, tag))
			r.Topic, r.Answer = Topics.Succeeded, string(handlers.PongAnswer(num))
		case 6, 7:
			r.Body = []byte(fmt.Sprintf(`{"transaction-id": %s, "payload": {"message": "pang"}}`, id))
			r.Topic, r.Answer, r.ReasonCode = Topics.Failed, string(handlers.NotPingAnswer(id)), poison.ReasonNotPing
		case 8:
			r.Body = []byte("not json " + tag)
			r.Topic, r.Answer, r.ReasonCode = Topics.Failed, string(handlers.MalformedAnswer()), poison.ReasonMalformed
		case 9:
			r.Body = []byte(fmt.Sprintf(`{"transaction-id": %s, "payload": {"text": "ping"}}`, id))
			r.Topic, r.Answer, r.ReasonCode = Topics.Failed, string(handlers.MalformedAnswer()), poison.ReasonMalformed
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// Produce sends the requests to .requested and waits for the broker to acknowledge them all. It
// returns each request's record (with its offset), in order.
func Produce(t testing.TB, cl *kgo.Client, reqs []Request) []*kgo.Record {
	t.Helper()
	records := make([]*kgo.Record, len(reqs))
	for i, r := range reqs {
		records[i] = &kgo.Record{Topic: Topics.Requested, Partition: r.Partition, Value: r.Body}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("producing %d requests: %v", len(reqs), err)
	}
	return records
}
