package transport

import (
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recreatedTopics lets a FranzPublisher write to an answer topic that was deleted and created
// again while it ran. franz-go writes to the first instance of a topic only: once its metadata
// shows a new topic id, every record to that topic fails with UNKNOWN_TOPIC_ID until the topic
// is purged from the client, and then the next record finds the new topic (franz-go's README,
// "Topic recreation"). The failed publish is retried by the Retry middleware, so purging on the
// first such error is all it takes: the retry writes to the new topic.
type recreatedTopics struct {
	mu      sync.Mutex
	purging map[string]bool
}

// failed purges topic from client's producer, once at a time, if err says the topic was
// recreated (or deleted).
func (r *recreatedTopics) failed(client *kgo.Client, topic string, err error) {
	if !errors.Is(err, kerr.UnknownTopicID) {
		return
	}
	r.mu.Lock()
	if r.purging == nil {
		r.purging = map[string]bool{}
	}
	if r.purging[topic] {
		r.mu.Unlock()
		return
	}
	r.purging[topic] = true
	r.mu.Unlock()
	// Not on the promise's goroutine: a purge waits for the client's metadata loop.
	go func() {
		client.PurgeTopicsFromProducing(topic)
		r.mu.Lock()
		delete(r.purging, topic)
		r.mu.Unlock()
	}()
}
