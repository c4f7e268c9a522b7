package reliability_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/poison"
)

// The poison record's size bound, end to end with the built binary against a separate broker:
// at the edges of what the configuration accepts (MAX_REQUEST_BYTES against
// KAFKA_PRODUCER_BATCH_BYTES, see config.PoisonOverheadBytes) and with a request of 200,000 tiny
// headers, the non-ping is poisoned with its reason, the ping behind it is answered, and the
// process stays alive.
func TestPoisonRecordsFitTheProducerAtTheConfigurationsEdges(t *testing.T) {
	id := `"` + strings.Repeat("i", 1000) + `"` // near the longest id, which the answer echoes
	largest := 1000012 - config.PoisonOverheadBytes
	many := make([]kgo.RecordHeader, 200000)
	for i := range many {
		many[i] = kgo.RecordHeader{Key: strconv.Itoa(i)}
	}
	for _, tc := range []struct {
		name    string
		env     []string
		value   []byte
		headers []kgo.RecordHeader
	}{
		{name: "largest MAX_REQUEST_BYTES for the default batch bytes",
			env:   []string{"MAX_REQUEST_BYTES=" + strconv.Itoa(largest)},
			value: padded(strings.Trim(id, `"`), "pang", largest)},
		{name: "smallest batch bytes for a 2 KiB MAX_REQUEST_BYTES",
			env:   []string{"MAX_REQUEST_BYTES=2048", "KAFKA_PRODUCER_BATCH_BYTES=" + strconv.Itoa(2048+config.PoisonOverheadBytes)},
			value: padded(strings.Trim(id, `"`), "pang", 2048)},
		{name: "200,000 tiny headers",
			value:   []byte(`{"transaction-id": "h", "payload": {"message": "pang"}}`),
			headers: many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The broker takes the header-heavy request (about 1.3 MB encoded).
			cluster := servicetest.Cluster(t, 1, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(8 << 20)}))
			brokers := cluster.ListenAddrs()
			p := servicetest.StartBinary(t, binary, append([]string{
				"KAFKA_BROKERS=" + strings.Join(brokers, ","), "TOPIC_PREFIX=" + servicetest.Prefix,
				"HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json",
			}, tc.env...))
			producer := servicetest.Client(t, brokers, kgo.ProducerBatchMaxBytes(8<<20), kgo.MaxBufferedBytes(64<<20))
			reader := servicetest.NewReader(t, brokers, kgo.FetchMaxBytes(16<<20), kgo.FetchMaxPartitionBytes(16<<20))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			hostileRecord := &kgo.Record{Topic: servicetest.Topics.Requested, Value: tc.value, Headers: tc.headers}
			ping := &kgo.Record{Topic: servicetest.Topics.Requested, Value: pingWithID(`"behind"`)}
			for _, r := range []*kgo.Record{hostileRecord, ping} {
				if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatalf("producing: %v", err)
				}
			}
			var poisoned, pong bool
			waitFor(t, time.Minute, "the poison record and the pong behind it", func() bool {
				if err, exited := p.Exited(); exited {
					t.Fatalf("the service exited: %v", err)
				}
				reader.Await(t, nil, 100*time.Millisecond)
				for _, a := range reader.Answers() {
					switch {
					case a.Topic == servicetest.Topics.Failed && a.Headers[poison.HeaderOffset] == strconv.FormatInt(hostileRecord.Offset, 10):
						if got := a.Headers[poison.HeaderReasonCode]; got != string(poison.ReasonNotPing) {
							t.Fatalf("reason code %q (%q), want not_ping", got, a.Headers[poison.HeaderReason])
						}
						poisoned = true
					case a.Topic == servicetest.Topics.Succeeded && a.Key == "behind":
						pong = true
					}
				}
				return poisoned && pong
			})
			if err, exited := p.Exited(); exited {
				t.Fatalf("the service exited: %v", err)
			}
		})
	}
}
