package transport_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/transport"
	"github.com/pingpong/pingpong/handlers"
)

// BenchmarkHotKey answers 3,000 records of one key followed by 20 of other keys on one
// partition, through the subscriber and the publisher, with every produce request held 2 ms by
// the broker (an acks=all write on a replicated cluster). It reports how long the hot key's
// backlog takes and how long the last of the other keys waited. For figures, not a goal:
//
//	go test ./app/transport -run '^$' -bench HotKey -benchtime 1x
func BenchmarkHotKey(b *testing.B) {
	for _, ordering := range []transport.Ordering{transport.OrderByKey, transport.OrderNone} {
		b.Run(string(ordering), func(b *testing.B) {
			for range b.N {
				hot, cold := hotKeyRun(b, ordering, 2*time.Millisecond)
				b.ReportMetric(float64(hot.Milliseconds()), "hot-drain-ms")
				b.ReportMetric(float64(cold.Milliseconds()), "others-last-ms")
			}
		})
	}
}

func hotKeyRun(b *testing.B, ordering transport.Ordering, write time.Duration) (hotDrain, coldLast time.Duration) {
	const hot, cold = 3000, 20
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic, answerTopic))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic(testTopic))
	if err != nil {
		b.Fatal(err)
	}
	recs := hotKeyBacklog(hot, cold)
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	var seen sync.Map
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if _, again := seen.LoadOrStore(req, true); !again {
			cluster.SleepControl(func() { time.Sleep(write) })
		}
		return nil, nil, false
	})
	pub, err := transport.NewFranzPublisher(transport.KeyFromMetadata(handlers.TransactionIDMetadataKey), kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	sub, err := transport.NewFranzSubscriber(transport.FranzSubscriberConfig{
		ClientOptions: []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}, ConsumerGroup: testGroup,
		ResetOffset: kgo.NewOffset().AtStart(), Window: 1024, Ordering: ordering,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	start := time.Now()
	msgs, err := sub.Subscribe(context.Background(), testTopic)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	hotLeft, coldLeft := hot, cold
	done := make(chan struct{})
	go func() {
		for msg := range msgs {
			go func() {
				a := message.NewMessage(string(msg.Payload), msg.Payload)
				a.SetContext(msg.Context())
				if err := pub.Publish(answerTopic, a); err != nil {
					msg.Nack()
					return
				}
				msg.Ack()
				mu.Lock()
				defer mu.Unlock()
				if string(msg.Payload) == "cold" {
					if coldLeft--; coldLeft == 0 {
						coldLast = time.Since(start)
					}
				} else if hotLeft--; hotLeft == 0 {
					hotDrain = time.Since(start)
				}
				if hotLeft == 0 && coldLeft == 0 {
					close(done)
				}
			}()
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatal("not answered in two minutes")
	}
	mu.Lock()
	defer mu.Unlock()
	return hotDrain, coldLast
}
