package transport_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/app/transport"
	"github.com/pingpong/pingpong/handlers"
)

const answerTopic = "t.succeeded"

// answerCluster starts a broker with the request topic holding recs, and the answer topic.
func answerCluster(t *testing.T, recs ...*kgo.Record) *kfake.Cluster {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic, answerTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic(testTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return cluster
}

func answer(t *testing.T, pub message.Publisher, req *message.Message) <-chan error {
	done := make(chan error, 1)
	go func() {
		a := message.NewMessage(string(req.Payload)+"-answer", req.Payload)
		a.SetContext(req.Context())
		done <- pub.Publish(answerTopic, a)
	}()
	return done
}

// A key's next message is delivered once the answer of the one before it is queued in the
// producer, while the broker still holds that answer's write: not a round trip per message.
func TestAKeysNextMessageGoesOnceTheAnswerBeforeItIsQueued(t *testing.T) {
	cluster := answerCluster(t, &kgo.Record{Key: []byte("k"), Value: []byte("a")}, &kgo.Record{Key: []byte("k"), Value: []byte("b")})
	release := make(chan struct{})
	var releaseOnce sync.Once
	var held atomic.Int64
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		held.Add(1)
		cluster.SleepControl(func() { <-release }) // an acks=all write that takes a while
		return nil, nil, false
	})
	pub, err := transport.NewFranzPublisher(transport.KeyFromMetadata(handlers.TransactionIDMetadataKey), kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before the publisher's Close, which flushes
	_, msgs := subscribeWith(t, cluster.ListenAddrs(), transport.FranzSubscriberConfig{Window: 8, Ordering: transport.OrderByKey})

	a := receive(t, msgs)
	published := answer(t, pub, a)
	b := receive(t, msgs)
	if string(a.Payload) != "a" || string(b.Payload) != "b" {
		t.Fatalf("delivered %q then %q, want a then b", a.Payload, b.Payload)
	}
	select {
	case err := <-published:
		t.Fatalf("a's answer acknowledged (%v) before b was delivered: the test's broker did not hold it", err)
	default:
	}
	for deadline := time.Now().Add(5 * time.Second); held.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a's answer never reached the broker")
		}
	}
	releaseOnce.Do(func() { close(release) })
	if err := <-published; err != nil {
		t.Fatal(err)
	}
}

// A failed answer after the key's next message was handed on rewinds the key: the next message's
// answer is refused (it would land before the failed one's next attempt), and once both are back
// the key is delivered again from the failed message, in order.
func TestAFailedAnswerRewindsItsKey(t *testing.T) {
	cluster := answerCluster(t, &kgo.Record{Key: []byte("k"), Value: []byte("a")}, &kgo.Record{Key: []byte("k"), Value: []byte("b")})
	release := make(chan struct{})
	var failed atomic.Bool
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if failed.Swap(true) {
			return nil, nil, false
		}
		cluster.SleepControl(func() { <-release })
		// The first write of an answer fails for good (not a retriable error).
		return servicetest.RefusedProduce(req.(*kmsg.ProduceRequest), kerr.InvalidRecord.Code), nil, true
	})
	pub, err := transport.NewFranzPublisher(transport.KeyFromMetadata(handlers.TransactionIDMetadataKey), kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	_, msgs := subscribeWith(t, cluster.ListenAddrs(), transport.FranzSubscriberConfig{Window: 8, Ordering: transport.OrderByKey, NackResendSleep: time.Millisecond})

	a := receive(t, msgs)
	aPublished := answer(t, pub, a)
	b := receive(t, msgs) // a's answer is queued
	close(release)
	if err := <-aPublished; err == nil {
		t.Fatal("a's answer published, want the injected failure")
	}
	if err := <-answer(t, pub, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("b's answer after a's failed: %v, want it refused", err)
	}
	b.Nack()
	a.Nack()
	var order []string
	for range 2 {
		m := receive(t, msgs)
		order = append(order, string(m.Payload))
		if err := <-answer(t, pub, m); err != nil {
			t.Fatalf("%s's answer after the rewind: %v", m.Payload, err)
		}
		m.Ack()
	}
	if order[0] != "a" || order[1] != "b" {
		t.Fatalf("after the rewind %v delivered, want a then b", order)
	}
}
