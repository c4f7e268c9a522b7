package transport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/transport"
)

// deliveredNow is what the subscriber delivers within a short while, by payload.
func deliveredNow(msgs <-chan *message.Message) map[string]*message.Message {
	got := map[string]*message.Message{}
	for {
		select {
		case msg := <-msgs:
			got[string(msg.Payload)] = msg
		case <-time.After(300 * time.Millisecond):
			return got
		}
	}
}

func keys(m map[string]*message.Message) []string {
	var ks []string
	for _, want := range []string{"a", "b", "c", "d", "e"} {
		if _, ok := m[want]; ok {
			ks = append(ks, want)
		}
	}
	return ks
}

// The messages of one key wait for each other, the others do not; a record without a key waits
// for nothing. KAFKA_ORDERING=partition and none, for comparison.
func TestMessagesOfOneKeyWaitForEachOther(t *testing.T) {
	records := []*kgo.Record{
		{Key: []byte("k1"), Value: []byte("a")},
		{Key: []byte("k2"), Value: []byte("b")},
		{Key: []byte("k1"), Value: []byte("c")},
		{Value: []byte("d")},
		{Key: []byte("k1"), Value: []byte("e")},
	}
	for _, tc := range []struct {
		ordering       transport.Ordering
		first, thenAck string
		then           []string
	}{
		{transport.OrderByKey, "a b d", "a", []string{"c"}},
		{transport.OrderByPartition, "a", "a", []string{"b"}},
		{transport.OrderNone, "a b c d e", "", nil},
	} {
		t.Run(string(tc.ordering), func(t *testing.T) {
			brokers, cl := broker(t, 1)
			if err := cl.ProduceSync(context.Background(), records...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			_, msgs := subscribeWith(t, brokers, transport.FranzSubscriberConfig{
				ConsumerGroup: testGroup,
				Window:        8,
				Ordering:      tc.ordering,
			})
			first := deliveredNow(msgs)
			if got := keys(first); strings.Join(got, " ") != tc.first {
				t.Fatalf("delivered at once: %v, want %s", got, tc.first)
			}
			if tc.thenAck == "" {
				return
			}
			first[tc.thenAck].Ack()
			if got := keys(deliveredNow(msgs)); strings.Join(got, " ") != strings.Join(tc.then, " ") {
				t.Fatalf("after %s is acked: %v delivered, want %v", tc.thenAck, got, tc.then)
			}
		})
	}
}
