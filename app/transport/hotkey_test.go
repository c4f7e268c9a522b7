package transport_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/transport"
)

// One key's backlog on a partition (3,000 records, each taking a millisecond to answer) does not
// hold back the partition's other keys: their messages are delivered while most of the backlog
// still waits, past the window of 1,024, within the budget.
func TestAHotKeyDoesNotHoldBackTheOtherKeys(t *testing.T) {
	const hot, cold = 3000, 20
	brokers, cl := broker(t, 1)
	recs := hotKeyBacklog(hot, cold)
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, msgs := subscribeWith(t, brokers, transport.FranzSubscriberConfig{Window: 1024, Ordering: transport.OrderByKey})
	var hotAnswered atomic.Int64
	coldSeen := 0
	deadline := time.After(30 * time.Second)
	for coldSeen < cold {
		select {
		case msg := <-msgs:
			if string(msg.Payload) == "cold" {
				coldSeen++
				msg.Ack()
				continue
			}
			go func() {
				time.Sleep(time.Millisecond) // the hot key's handler
				hotAnswered.Add(1)
				msg.Ack()
			}()
		case <-deadline:
			t.Fatalf("%d of %d other keys' messages delivered in 30 s; %d of the hot key's answered", coldSeen, cold, hotAnswered.Load())
		}
	}
	if n := hotAnswered.Load(); n > hot/2 {
		t.Fatalf("the other keys' messages waited for %d of the hot key's %d to be answered", n, hot)
	}
}

// hotKeyBacklog is hot records of the key "hot", then cold records of keys of their own.
func hotKeyBacklog(hot, cold int) []*kgo.Record {
	recs := make([]*kgo.Record, 0, hot+cold)
	for i := range hot {
		recs = append(recs, &kgo.Record{Key: []byte("hot"), Value: []byte(strconv.Itoa(i))})
	}
	for i := range cold {
		recs = append(recs, &kgo.Record{Key: []byte("cold-" + strconv.Itoa(i)), Value: []byte("cold")})
	}
	return recs
}
