package transport_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
	"github.com/pingpong/pingpong/app/transport"
	"github.com/pingpong/pingpong/handlers"
)

// A backlog of many keys, each with many records, far more than the budget holds as look-ahead,
// is all answered: messages waiting behind their keys never take the room the keys' next
// messages need.
func TestABacklogOfManyKeysIsAllAnswered(t *testing.T) {
	const n, keys = 20_000, 200
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte("tx-" + strconv.Itoa(i%keys)), Value: []byte(strconv.Itoa(i))}
	}
	cluster := answerCluster(t, recs...)
	pub, err := transport.NewFranzPublisher(transport.KeyFromMetadata(handlers.TransactionIDMetadataKey), kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	b := budget.New(4 << 20)
	_, msgs := subscribeWith(t, cluster.ListenAddrs(), transport.FranzSubscriberConfig{Window: 1024, Ordering: transport.OrderByKey, Budget: b})
	var answered atomic.Int64
	deadline := time.After(60 * time.Second)
	for answered.Load() < n {
		select {
		case msg := <-msgs:
			go func() {
				a := message.NewMessage(string(msg.Payload), msg.Payload)
				a.SetContext(msg.Context())
				if err := pub.Publish(answerTopic, a); err != nil {
					msg.Nack()
					return
				}
				answered.Add(1)
				msg.Ack()
			}()
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d answered in 60 s; the budget holds %d of %d bytes", answered.Load(), n, b.Used(), b.Limit())
		}
	}
}
