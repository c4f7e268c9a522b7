package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Following the requested topic as the cluster changes under the subscriber (docs/runbooks.md,
// "The requested topic was deleted or recreated"):
//
//   - Deleted and recreated: franz-go consumes the first instance of a topic only; the new one
//     fails every fetch with UNKNOWN_TOPIC_ID, at once and for ever, until the topic is purged
//     from the client and added back (franz-go's README, "Topic recreation"). The watch pauses
//     the topic at the first such error, so the fetches stop, waits for the topic to exist, and
//     purges and re-adds it. The old topic's offsets are gone with it (the broker drops a
//     deleted topic's commits, and franz-go drops the marks of a recreated one), so the new
//     topic is read from its start: every record in it was written after the old one was
//     deleted, while the service was subscribed.
//   - Deleted, not recreated: there is nothing to read; the subscriber is not ready
//     (Assignment.Readable) until the topic exists again.
//   - Partitions added: the group's leader finds them at its next metadata refresh and the
//     group rebalances; refreshing every topicMetadataMaxAge rather than franz-go's 5 minutes
//     has them consumed within 30 s. A partition that appears while the service runs is read
//     from its start even with CONSUMER_OFFSET=latest: its records are new.

// Timings of the watch.
const (
	// topicCheckEvery is how often the watch asks the cluster for the topic while all is well.
	topicCheckEvery = 5 * time.Second
	// topicMissingBackoff is the first pause between checks while the topic does not exist or
	// cannot be read; it doubles up to topicCheckEvery.
	topicMissingBackoff = 500 * time.Millisecond
	// topicMetadataMaxAge is how old the client's metadata may get: new partitions are found
	// (and a rebalance started) at the latest this long after they were added.
	topicMetadataMaxAge = 10 * time.Second
)

// topicWatch follows one subscribed topic: its existence, its id and its partitions.
type topicWatch struct {
	topic      string
	logger     watermill.LoggerAdapter
	assignment *Assignment
	client     *kgo.Client

	// unknownID is signalled by the poll loop on an UNKNOWN_TOPIC_ID fetch error.
	unknownID chan struct{}
	paused    atomic.Bool // the topic's fetches are paused until it is subscribed again
	// unreadable: the watch said the topic cannot be read (run's alone).
	unreadable bool

	mu sync.Mutex
	// id and partitions are what the watch last saw of the topic, once it existed.
	id         [16]byte
	partitions int
	// Partitions born while the service ran are read from their start when the group has
	// nothing committed for them: all of a recreated topic's, and those at or above grownFrom
	// (-1: none) of a grown one.
	recreated bool
	grownFrom int
}

func newTopicWatch(topic string, logger watermill.LoggerAdapter, assignment *Assignment) *topicWatch {
	return &topicWatch{topic: topic, logger: logger, assignment: assignment, unknownID: make(chan struct{}, 1), grownFrom: -1}
}

// options are the client options the watch needs.
func (w *topicWatch) options() []kgo.Opt {
	return []kgo.Opt{
		kgo.MetadataMaxAge(topicMetadataMaxAge),
		kgo.AdjustFetchOffsetsFn(w.adjustOffsets),
	}
}

// fetchFailed is the poll loop's hook: true if the error is the watch's to handle. An
// UNKNOWN_TOPIC_ID error comes back at every fetch (thousands a second a partition) until the
// topic is purged, so the topic is paused at once and the watch takes over.
func (w *topicWatch) fetchFailed(err error) bool {
	if !errors.Is(err, kerr.UnknownTopicID) {
		return false
	}
	if w.paused.CompareAndSwap(false, true) {
		w.client.PauseFetchTopics(w.topic)
	}
	select {
	case w.unknownID <- struct{}{}:
	default:
	}
	return true
}

// commitFailed is the revoke's hook: true if a failed commit is the watch's to explain. The
// partitions of a deleted topic are revoked when it is purged, and their offsets cannot be
// committed (UNKNOWN_TOPIC_ID): they are gone with the topic, and nothing is answered again.
func (w *topicWatch) commitFailed(err error) bool {
	if !errors.Is(err, kerr.UnknownTopicID) {
		return false
	}
	w.logger.Info("The revoked partitions' offsets were not committed: their topic was deleted", nil)
	return true
}

// topicSeen is what a metadata request said of the topic.
type topicSeen struct {
	exists     bool
	id         [16]byte
	partitions int
	err        error // the request failed: nothing is known
}

// watchStep is what the watch does after a look at the topic.
type watchStep int

const (
	stepNone        watchStep = iota // all is well
	stepMissing                      // the topic does not exist: not ready, look again soon
	stepResubscribe                  // the topic was recreated, or cannot be fetched: purge and add it back
	stepGrown                        // partitions were added
)

// decide is the watch's decision, from what it knew of the topic (known is false before the
// first look), what it sees now, and whether fetches failed with UNKNOWN_TOPIC_ID since.
func decide(known bool, id [16]byte, partitions int, seen topicSeen, unknownID bool) watchStep {
	switch {
	case seen.err != nil:
		return stepNone // the broker is unreachable: readiness says so already
	case !seen.exists:
		return stepMissing
	case unknownID, known && seen.id != id:
		return stepResubscribe
	case known && seen.partitions > partitions:
		return stepGrown
	}
	return stepNone
}

// start follows the topic on client until ctx ends.
func (w *topicWatch) start(ctx context.Context, client *kgo.Client) {
	w.client = client
	go w.run(ctx, client)
}

func (w *topicWatch) run(ctx context.Context, client *kgo.Client) {
	backoff := topicMissingBackoff
	wait := time.Duration(0)
	for {
		unknownID := false
		select {
		case <-ctx.Done():
			return
		case <-w.unknownID:
			unknownID = true
		case <-time.After(wait):
		}
		seen := w.look(ctx, client)
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		known := w.id != [16]byte{}
		step := decide(known, w.id, w.partitions, seen, unknownID || w.paused.Load())
		w.mu.Unlock()
		wait = topicCheckEvery
		switch step {
		case stepMissing:
			if !w.unreadable {
				w.unreadable = true
				w.assignment.topicUnreadable(fmt.Sprintf("the requested topic %s does not exist", w.topic))
				w.logger.Error("The requested topic does not exist; waiting for it", errors.New("topic not found"), nil)
			}
			wait, backoff = backoff, min(2*backoff, topicCheckEvery)
			continue
		case stepResubscribe:
			w.resubscribe(client, seen)
		case stepGrown:
			w.logger.Info("Partitions added to the requested topic; the group rebalances to take them",
				watermill.LogFields{"partitions_before": w.partitions, "partitions": seen.partitions})
			w.mu.Lock()
			if w.grownFrom < 0 {
				w.grownFrom = w.partitions
			}
			w.mu.Unlock()
			client.ForceMetadataRefresh()
		}
		if seen.err == nil {
			w.mu.Lock()
			w.id, w.partitions = seen.id, seen.partitions
			w.mu.Unlock()
			if w.unreadable {
				w.unreadable = false
				w.assignment.topicReadable()
				w.logger.Info("The requested topic can be read again", nil)
			}
		}
		backoff = topicMissingBackoff
	}
}

// resubscribe purges the topic from the client and adds it back: the group rebalances (the
// partitions of the old topic are revoked, their messages in flight drained) and assigns the
// new topic's partitions, read from the group's commits for the new topic, or from its start.
func (w *topicWatch) resubscribe(client *kgo.Client, seen topicSeen) {
	w.unreadable = true
	w.assignment.topicUnreadable(fmt.Sprintf("the requested topic %s was deleted and recreated; subscribing to the new one", w.topic))
	w.logger.Info("The requested topic was deleted and recreated: subscribing to the new topic, read from its start", watermill.LogFields{
		"topic_id": fmt.Sprintf("%x", seen.id), "partitions": seen.partitions,
	})
	w.mu.Lock()
	w.recreated = true
	w.grownFrom = -1
	w.mu.Unlock()
	if !w.paused.Swap(true) {
		client.PauseFetchTopics(w.topic)
	}
	client.PurgeTopicsFromClient(w.topic)
	client.ResumeFetchTopics(w.topic)
	w.paused.Store(false)
	client.AddConsumeTopics(w.topic)
	// Errors the old topic's fetches buffered before the purge are not a new recreation.
	select {
	case <-w.unknownID:
	default:
	}
}

// look asks the cluster for the topic, bypassing the client's metadata cache.
func (w *topicWatch) look(ctx context.Context, client *kgo.Client) topicSeen {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(w.topic)
	req.Topics = append(req.Topics, t)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		return topicSeen{err: err}
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != w.topic {
			continue
		}
		err := kerr.ErrorForCode(rt.ErrorCode)
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return topicSeen{}
		case err != nil:
			return topicSeen{err: err}
		}
		return topicSeen{exists: true, id: rt.TopicID, partitions: len(rt.Partitions)}
	}
	return topicSeen{}
}

// adjustOffsets is the group's AdjustFetchOffsetsFn: a partition of a recreated topic, or one
// added while the service ran, that the group has no commit for starts at its first record
// rather than at the reset offset (CONSUMER_OFFSET=latest would skip what was written to it
// before the group took it).
func (w *topicWatch) adjustOffsets(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	w.mu.Lock()
	recreated, grownFrom := w.recreated, w.grownFrom
	w.mu.Unlock()
	for p, o := range offsets[w.topic] {
		born := recreated || grownFrom >= 0 && int(p) >= grownFrom
		if born && o.EpochOffset().Offset == kgo.NewOffset().AtEnd().EpochOffset().Offset {
			offsets[w.topic][p] = kgo.NewOffset().AtStart()
		}
	}
	return offsets, nil
}
