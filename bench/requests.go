package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/handlers"
)

// request is a request of the benchmark and the answer it must get. Every request has a
// transaction id (Tag), which every system writes as the answer's key.
type request struct {
	Tag string
	// Key is the record key, when not the transaction id (the hot-key scenario).
	Key       string
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

// record is r as a client writes it: keyed by its transaction id, to the partition r names
// when the writing client partitions by hand.
func record(prefix string, r request) *kgo.Record {
	key := r.Tag
	if r.Key != "" {
		key = r.Key
	}
	return &kgo.Record{Topic: prefix + ".requested", Partition: r.Partition, Key: []byte(key), Value: r.Body}
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
//
// It shares the machine with the system under test, so its work while a drain runs is kept to
// appending each record and ticking it off: the records are sorted out by key only when asked
// (tally, firstAnswerAt), after the drain. Checking a 100,000-request map every few milliseconds
// took a fifth of the machine's CPU from the system being measured.
type answerReader struct {
	prefix string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	records []answerRecord
	first   time.Time
	last    time.Time
	waiting *waiter
}

type answerRecord struct {
	key, topic, value string
	at                time.Time
	// written is the record's timestamp: when the system produced it (franz-go stamps a record
	// as it is produced), which is before it was read by as much as the write and, for an
	// exactly-once system, the wait for its transaction's commit.
	written time.Time
}

// waiter counts down the requests of one run (tags "<run>-<index>", as requests makes them) as
// their first answers arrive.
type waiter struct {
	run         string
	answered    []bool
	unanswered  int
	allAnswered chan struct{}
}

// tick notes an answer to tag; it closes allAnswered at the last request's first answer.
func (w *waiter) tick(tag string) {
	dash := strings.LastIndexByte(tag, '-')
	if dash < 0 || tag[:dash] != w.run {
		return
	}
	i, err := strconv.Atoi(tag[dash+1:])
	if err != nil || i < 0 || i >= len(w.answered) || w.answered[i] {
		return
	}
	w.answered[i] = true
	w.unanswered--
	if w.unanswered == 0 {
		close(w.allAnswered)
	}
}

// newAnswerReader reads prefix's answers; readCommitted reads only committed transactions' (the
// answers of an exactly-once system count once its transaction has committed, not before).
func newAnswerReader(brokers []string, prefix string, readCommitted bool) (*answerReader, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(prefix+".succeeded", prefix+".failed"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(10 * time.Millisecond)}
	if readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &answerReader{prefix: prefix, cl: cl, cancel: cancel, done: make(chan struct{})}
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
				a := answerRecord{string(rec.Key), rec.Topic, string(rec.Value), now, rec.Timestamp}
				r.records = append(r.records, a)
				if r.waiting != nil {
					r.waiting.tick(a.key)
				}
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

// waitFor waits until every request (all of one run) has an answer; false if the timeout passed
// first.
func (r *answerReader) waitFor(reqs []request, timeout time.Duration) bool {
	if len(reqs) == 0 {
		return true
	}
	run := reqs[0].Tag[:strings.LastIndexByte(reqs[0].Tag, '-')]
	w := &waiter{run: run, answered: make([]bool, len(reqs)), unanswered: len(reqs), allAnswered: make(chan struct{})}
	r.mu.Lock()
	for _, a := range r.records {
		w.tick(a.key)
	}
	if w.unanswered > 0 {
		r.waiting = w
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.waiting = nil
		r.mu.Unlock()
	}()

	select {
	case <-w.allAnswered:
		time.Sleep(200 * time.Millisecond) // late duplicates
		return true
	case <-time.After(timeout):
		return false
	}
}

type tally struct {
	Missing    []string
	Duplicates int
	Wrong      []string
}

// byKey sorts the answers read so far by key; r.mu is held.
func (r *answerReader) byKey() map[string][]answerRecord {
	answers := make(map[string][]answerRecord, len(r.records))
	for _, a := range r.records {
		answers[a.key] = append(answers[a.key], a)
	}
	return answers
}

func (r *answerReader) tally(reqs []request) tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	answers := r.byKey()
	var t tally
	for _, q := range reqs {
		answers := answers[q.Tag]
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

// spanOf is when the first and the last first answer of reqs were read.
func (r *answerReader) spanOf(reqs []request) (first, last time.Time) {
	for _, at := range r.firstAnswerAt(reqs) {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	return first, last
}

// span is when the first and the last answer were read, and how many were read in the first
// poll: the drain's rate is the others over the span. An exactly-once system's answers become
// readable a transaction at a time, so its first poll holds a whole transaction's.
func (r *answerReader) span() (first, last time.Time, inFirstPoll int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.records {
		if !a.at.Equal(r.first) {
			break
		}
		inFirstPoll++
	}
	return r.first, r.last, inFirstPoll
}

func (r *answerReader) firstAnswerAt(reqs []request) map[string]time.Time {
	return r.firstAnswers(reqs, func(a answerRecord) time.Time { return a.at })
}

// firstAnswerWrittenAt is when the first answer of each request was produced (its timestamp).
func (r *answerReader) firstAnswerWrittenAt(reqs []request) map[string]time.Time {
	return r.firstAnswers(reqs, func(a answerRecord) time.Time { return a.written })
}

func (r *answerReader) firstAnswers(reqs []request, when func(answerRecord) time.Time) map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	answers := r.byKey()
	at := make(map[string]time.Time, len(reqs))
	for _, q := range reqs {
		if a := answers[q.Tag]; len(a) > 0 {
			at[q.Tag] = when(a[0])
		}
	}
	return at
}
