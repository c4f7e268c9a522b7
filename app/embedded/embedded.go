// Package embedded runs an in-process Kafka-protocol broker (franz-go's kfake) for development:
// `go run ./app` with no KAFKA_BROKERS needs nothing else, and any Kafka client can talk to it.
// It keeps everything in memory and is not for production.
package embedded

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running embedded broker.
type Broker struct {
	cluster        *kfake.Cluster
	stopKeepAlives func()
}

// Start runs a one-node broker on 127.0.0.1:port (0 picks a free port) with the topics created.
func Start(port, partitions int, topics ...string) (*Broker, error) {
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.SeedTopics(int32(partitions), topics...),
		kfake.DefaultNumPartitions(partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.ListenFn(Listen),
	)
	if err != nil {
		return nil, fmt.Errorf("starting the embedded broker on 127.0.0.1:%d: %w", port, err)
	}
	stop, err := KeepJoinersAlive(cluster)
	if err != nil {
		cluster.Close()
		return nil, fmt.Errorf("starting the embedded broker on 127.0.0.1:%d: %w", port, err)
	}
	return &Broker{cluster: cluster, stopKeepAlives: stop}, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return b.cluster.ListenAddrs()[0] }

// Close stops the broker; what it held is gone.
func (b *Broker) Close() {
	b.stopKeepAlives()
	b.cluster.Close()
}
