package transport_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/transport"
	"github.com/pingpong/pingpong/handlers"
)

// Both transports put an answer on the partition Java's default partitioner (murmur2 of the
// key) and franz-go's default choose for its key, so answers to one transaction keep their
// partition whichever transport runs, and consumers that rely on Kafka's keying find them.
// The reference is an independent franz-go client with its default partitioner.
func TestBothTransportsKeyAnswersLikeKafkasDefaultPartitioner(t *testing.T) {
	const partitions = 12
	topics := map[string]string{"reference": "keys.reference", "franz-go": "keys.franz", "watermill-kafka": "keys.sarama"}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics["reference"], topics["franz-go"], topics["watermill-kafka"]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()

	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprintf("order-%d", i)
	}
	answers := func() []*message.Message {
		msgs := make([]*message.Message, len(ids))
		for i, id := range ids {
			msgs[i] = message.NewMessage(watermill.NewUUID(), handlers.PongAnswer([]byte(`"`+id+`"`)))
			msgs[i].Metadata.Set(handlers.TransactionIDMetadataKey, id)
		}
		return msgs
	}

	reference, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer reference.Close()
	for _, id := range ids {
		if err := reference.ProduceSync(context.Background(), &kgo.Record{Topic: topics["reference"], Key: []byte(id)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	franz, err := transport.NewFranzPublisher(transport.KeyFromMetadata(handlers.TransactionIDMetadataKey), kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer franz.Close()
	if err := franz.Publish(topics["franz-go"], answers()...); err != nil {
		t.Fatal(err)
	}

	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	c := config.ServiceFlags(fs)
	c.Kafka.Brokers = brokers[0]
	sarama, err := transport.SaramaPublisher(*c, watermill.NopLogger{}, transport.KeyFromMetadata(handlers.TransactionIDMetadataKey))
	if err != nil {
		t.Fatal(err)
	}
	defer sarama.Close()
	if err := sarama.Publish(topics["watermill-kafka"], answers()...); err != nil {
		t.Fatal(err)
	}

	partitionOf := readPartitions(t, brokers, topics, len(ids))
	for _, id := range ids {
		want := partitionOf[topics["reference"]][id]
		for _, name := range []string{"franz-go", "watermill-kafka"} {
			if got := partitionOf[topics[name]][id]; got != want {
				t.Errorf("%s put key %q on partition %d, Kafka's default partitioner on %d", name, id, got, want)
			}
		}
	}
}

// readPartitions reads every topic from the start and returns each key's partition, by topic.
func readPartitions(t *testing.T, brokers []string, topics map[string]string, perTopic int) map[string]map[string]int32 {
	t.Helper()
	var names []string
	for _, topic := range topics {
		names = append(names, topic)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(names...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	partitionOf := map[string]map[string]int32{}
	for read := 0; read < perTopic*len(topics); {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", read, perTopic*len(topics))
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if partitionOf[r.Topic] == nil {
				partitionOf[r.Topic] = map[string]int32{}
			}
			partitionOf[r.Topic][string(r.Key)] = r.Partition
			read++
		})
	}
	return partitionOf
}
