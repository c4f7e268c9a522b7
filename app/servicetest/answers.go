package servicetest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/poison"
)

// Answer is a record read from .succeeded or .failed.
type Answer struct {
	Topic   string
	Key     string
	Value   string
	Headers map[string]string
}

// Tally is what became of a set of requests.
type Tally struct {
	Requests   int
	Answered   int // requests with at least one answer
	Duplicates int // answers beyond the first for a request (at least once allows them)
	Wrong      []string
	Missing    []string // tags of requests without an answer
}

func (t Tally) String() string {
	return fmt.Sprintf("requests=%d answered=%d lost=%d duplicates=%d wrong=%d",
		t.Requests, t.Answered, len(t.Missing), t.Duplicates, len(t.Wrong))
}

// Reader reads .succeeded and .failed from the start, outside any consumer group, committed
// records only, as the docs tell every client to (in exactly-once mode an aborted transaction's
// answers are written, and must not be read).
type Reader struct {
	cl      *kgo.Client
	answers []Answer
}

// NewReader starts reading the answer topics. opts are added to the client's (TLS, SASL, fetch
// sizes).
func NewReader(t testing.TB, brokers []string, opts ...kgo.Opt) *Reader {
	t.Helper()
	opts = append([]kgo.Opt{kgo.ConsumeTopics(Topics.Succeeded, Topics.Failed), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted())}, opts...)
	return &Reader{cl: Client(t, brokers, opts...)}
}

// Await reads until every request has an answer (then a little longer, to catch duplicates) or
// the timeout passes, and checks every answer against its request.
func (r *Reader) Await(t testing.TB, reqs []Request, timeout time.Duration) Tally {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r.poll(200 * time.Millisecond)
		if len(r.answers) < len(reqs) {
			continue // cannot be complete yet; Check is O(requests)
		}
		if tally := Check(reqs, r.answers); len(tally.Missing) == 0 {
			r.poll(300 * time.Millisecond) // answers still in flight count as duplicates
			return Check(reqs, r.answers)
		}
	}
	return Check(reqs, r.answers)
}

// Answers are the records read so far.
func (r *Reader) Answers() []Answer { return r.answers }

func (r *Reader) poll(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	fetches := r.cl.PollFetches(ctx)
	fetches.EachRecord(func(rec *kgo.Record) {
		a := Answer{Topic: rec.Topic, Key: string(rec.Key), Value: string(rec.Value), Headers: map[string]string{}}
		for _, h := range rec.Headers {
			a.Headers[h.Key] = string(h.Value)
		}
		r.answers = append(r.answers, a)
	})
}

// Check matches answers to requests: an answer on .succeeded by its key (the transaction id), an
// answer on .failed by the original request its headers carry. Each answer must be on the
// request's topic, with its exact value and, on .failed, the poison headers.
func Check(reqs []Request, answers []Answer) Tally {
	byBody := make(map[string]*Request, len(reqs))
	byKey := make(map[string]*Request, len(reqs))
	for i := range reqs {
		byBody[string(reqs[i].Body)] = &reqs[i]
		byKey[strings.SplitN(reqs[i].Tag, "/", 2)[0]] = &reqs[i]
	}
	seen := make(map[*Request]int, len(reqs))
	tally := Tally{Requests: len(reqs)}
	for _, a := range answers {
		req := byKey[a.Key]
		if a.Topic == Topics.Failed {
			req = byBody[a.Headers[poison.HeaderOriginal]]
		}
		if req == nil {
			continue // an answer to a request of another test or run
		}
		seen[req]++
		if problem := wrong(*req, a); problem != "" {
			tally.Wrong = append(tally.Wrong, req.Tag+": "+problem)
		}
	}
	for i := range reqs {
		switch n := seen[&reqs[i]]; {
		case n == 0:
			tally.Missing = append(tally.Missing, reqs[i].Tag)
		default:
			tally.Answered++
			tally.Duplicates += n - 1
		}
	}
	return tally
}

func wrong(req Request, a Answer) string {
	if a.Topic != req.Topic {
		return fmt.Sprintf("answered on %s, want %s", a.Topic, req.Topic)
	}
	if a.Value != req.Answer {
		return fmt.Sprintf("answer %s, want %s", a.Value, req.Answer)
	}
	if a.Topic != Topics.Failed {
		return ""
	}
	h := a.Headers
	switch {
	case h[poison.HeaderReasonCode] != string(req.ReasonCode):
		return fmt.Sprintf("reason code %q, want %q", h[poison.HeaderReasonCode], req.ReasonCode)
	case h[poison.HeaderReason] == "":
		return "no reason_poisoned header"
	case h[poison.HeaderTopic] != Topics.Requested:
		return fmt.Sprintf("topic_poisoned %q", h[poison.HeaderTopic])
	case h[poison.HeaderHandler] != "pingpong":
		return fmt.Sprintf("handler_poisoned %q", h[poison.HeaderHandler])
	case h[poison.HeaderPartition] != strconv.Itoa(int(req.Partition)):
		return fmt.Sprintf("source partition %q, want %d", h[poison.HeaderPartition], req.Partition)
	case h[poison.HeaderOffset] == "":
		return "no source offset header"
	case h[poison.HeaderAttempts] == "":
		return "no attempts header"
	case h[poison.HeaderCorrelationID] == "":
		return "no correlation id"
	}
	if _, err := time.Parse(time.RFC3339Nano, h[poison.HeaderFailedAt]); err != nil {
		return "failed_at is not a time: " + err.Error()
	}
	return ""
}
