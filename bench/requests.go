package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/handlers"
)

// request is a request of the benchmark and the answer it must get. Every request has a
// transaction id (Tag), which every system writes as the answer's key.
type request struct {
	Tag       string
	Body      []byte
	Partition int32
	Topic     string // suffix: .succeeded or .failed
	Answer    string
}

// requests makes n requests over partitions: 7 pings, 2 non-pings and 1 malformed in ten.
func requests(run string, n, partitions int) []request {
	reqs := make([]request, n)
	for i := range reqs {
		tag := fmt.Sprintf("%s-%d", run, i)
		id := []byte(fmt.Sprintf("%q", tag))
		r := request{Tag: tag, Partition: int32(i % partitions)}
		switch i % 10 {
		case 7, 8:
			r.Body = []byte(fmt.Sprintf(`{"transaction-id": %s, "payload": {"message": "pang"}}`, id))
			r.Topic, r.Answer = ".failed", string(handlers.NotPingAnswer(id))
		case 9:
			r.Body = []byte(fmt.Sprintf(`{"transaction-id": %s, "payload": "ping"}`, id))
			r.Topic, r.Answer = ".failed", string(handlers.MalformedAnswer())
		default:
			r.Body = []byte(fmt.Sprintf(`{"transaction-id": %s, "payload": {"message": "ping"}}`, id))
			r.Topic, r.Answer = ".succeeded", string(handlers.PongAnswer(id))
		}
		reqs[i] = r
	}
	return reqs
}

func record(prefix string, r request) *kgo.Record {
	return &kgo.Record{Topic: prefix + ".requested", Partition: r.Partition, Value: r.Body}
}

func produce(cl *kgo.Client, prefix string, reqs []request) error {
	const batch = 10_000
	for start := 0; start < len(reqs); start += batch {
		recs := make([]*kgo.Record, 0, batch)
		for _, r := range reqs[start:min(start+batch, len(reqs))] {
			recs = append(recs, record(prefix, r))
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// answerReader reads a run's answer topics from the start, outside any group, and remembers
// when each answer was read.
type answerReader struct {
	prefix string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	answers map[string][]answerRecord // by key
	first   time.Time
	last    time.Time
}

type answerRecord struct {
	topic, value string
	at           time.Time
}

func newAnswerReader(brokers []string, prefix string) (*answerReader, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(prefix+".succeeded", prefix+".failed"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &answerReader{prefix: prefix, cl: cl, cancel: cancel, done: make(chan struct{}), answers: map[string][]answerRecord{}}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			now := time.Now()
			r.mu.Lock()
			fetches.EachRecord(func(rec *kgo.Record) {
				if r.first.IsZero() {
					r.first = now
				}
				r.last = now
				r.answers[string(rec.Key)] = append(r.answers[string(rec.Key)], answerRecord{rec.Topic, string(rec.Value), now})
			})
			r.mu.Unlock()
		}
	}()
	return r, nil
}

func (r *answerReader) close() {
	r.cancel()
	<-r.done
	r.cl.Close()
}

// waitFor waits until every request has an answer; false if the timeout passed first.
func (r *answerReader) waitFor(reqs []request, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(r.tally(reqs).Missing) == 0 {
			time.Sleep(200 * time.Millisecond) // late duplicates
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

type tally struct {
	Missing    []string
	Duplicates int
	Wrong      []string
}

func (r *answerReader) tally(reqs []request) tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t tally
	for _, q := range reqs {
		answers := r.answers[q.Tag]
		if len(answers) == 0 {
			t.Missing = append(t.Missing, q.Tag)
			continue
		}
		t.Duplicates += len(answers) - 1
		for _, a := range answers {
			if a.topic != r.prefix+q.Topic || a.value != q.Answer {
				t.Wrong = append(t.Wrong, fmt.Sprintf("%s: %s on %s", q.Tag, a.value, a.topic))
			}
		}
	}
	return t
}

func (r *answerReader) span() (time.Time, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first, r.last
}

func (r *answerReader) firstAnswerAt(reqs []request) map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := make(map[string]time.Time, len(reqs))
	for _, q := range reqs {
		if a := r.answers[q.Tag]; len(a) > 0 {
			at[q.Tag] = a[0].at
		}
	}
	return at
}
