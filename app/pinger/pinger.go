// Package pinger sends requests to the service and waits for their answers: `pingpong ping`, a
// smoke test of a running service from the outside.
//
// It reads <prefix>.succeeded and <prefix>.failed directly by partition from the end offsets
// taken before it sends anything, never in a consumer group, and matches each answer to its
// request by transaction id (the record key or the transaction_id header) or, for a malformed
// request that has none, by the original request the poison record carries. It depends only on
// the record format, not on how the service talks to Kafka.
package pinger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/poison"
)

// Kind is what a request is and so which answer it must get.
type Kind string

const (
	Ping      Kind = "ping"      // answered with a pong on .succeeded
	NotPing   Kind = "not_ping"  // well-formed, message "pang": answered on .failed, reason not_ping
	Malformed Kind = "malformed" // no transaction id: answered on .failed, reason malformed
)

// Request is one request sent and what became of it.
type Request struct {
	// Label names the request: its transaction id, or for a malformed one (which has none) a
	// name of the same shape.
	Label string
	Kind  Kind
	Key   []byte
	Body  []byte

	SentAt  time.Time
	SendErr error

	Answered  bool
	RoundTrip time.Duration
	// Where the answer is: topic, partition and offset.
	AnswerTopic     string
	AnswerPartition int32
	AnswerOffset    int64
	// ReasonCode is the answer's pingpong_reason_code (on .failed).
	ReasonCode string
	// Unexpected says how the answer differs from the one the request must get.
	Unexpected string
}

// Outcome is a short word for the answer: pong, or the poison reason code.
func (r *Request) Outcome() string {
	if r.ReasonCode != "" {
		return r.ReasonCode
	}
	return "pong"
}

// Pinger sends requests to one service's topics.
type Pinger struct {
	topics  config.Topics
	client  *kgo.Client
	timeout time.Duration
}

// Open connects to the cluster, failing within KAFKA_TIMEOUT when no broker answers, and checks
// that the topics exist.
// opts are more client options (a logger, say).
func Open(ctx context.Context, k config.Kafka, opts ...kgo.Opt) (*Pinger, error) {
	client, err := kafkaclient.Connect(ctx, k, append([]kgo.Opt{
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), // answers as a committed reader sees them
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(max(k.Timeout, time.Second)), // franz-go takes no less than 1s
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	p := &Pinger{topics: k.Topics(), client: client, timeout: k.Timeout}
	if _, err := p.endOffsets(ctx); err != nil { // the topics exist
		client.Close()
		return nil, err
	}
	return p, nil
}

// Close closes the connection.
func (p *Pinger) Close() { p.client.Close() }

// Requests makes the requests of a run: pings first, then the bad ones, malformed and not pings
// in turn. run makes their labels unique.
func Requests(run string, pings, bad int) []*Request {
	reqs := make([]*Request, 0, pings+bad)
	for i := 1; i <= pings; i++ {
		id := fmt.Sprintf("ping-%s-%d", run, i)
		reqs = append(reqs, &Request{Label: id, Kind: Ping, Key: []byte(id),
			Body: fmt.Appendf(nil, `{"transaction-id": %q, "payload": {"message": "ping"}}`, id)})
	}
	for i := 1; i <= bad; i++ {
		if i%2 == 1 {
			// No transaction id, so the answer is found by the original request the poison
			// record carries; the label is only in the body.
			label := fmt.Sprintf("malformed-%s-%d", run, i)
			reqs = append(reqs, &Request{Label: label, Kind: Malformed,
				Body: fmt.Appendf(nil, `{"payload": {"message": "ping"}, "sent-by": "pingpong ping", "label": %q}`, label)})
			continue
		}
		id := fmt.Sprintf("pang-%s-%d", run, i)
		reqs = append(reqs, &Request{Label: id, Kind: NotPing, Key: []byte(id),
			Body: fmt.Appendf(nil, `{"transaction-id": %q, "payload": {"message": "pang"}}`, id)})
	}
	return reqs
}

// RunID is a short random id that makes a run's labels unique.
func RunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// ErrNotSent is the SendErr of a request that was never handed to Kafka: the run was
// interrupted, or timed out, before its turn.
var ErrNotSent = errors.New("stopped before it was sent")

// Run sends reqs to <prefix>.requested and waits for their answers until each has one, timeout
// passes or ctx is done (Ctrl-C), calling answered for each answer as it arrives. The answers
// are read while the requests are still being sent, so that a run stopped early has counted
// every answer that came before. Requests without an answer are left with Answered false;
// those not sent, with SendErr set (ErrNotSent for those never handed to Kafka).
func (p *Pinger) Run(ctx context.Context, reqs []*Request, timeout time.Duration, answered func(*Request)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The answers come after these offsets: take them before sending anything.
	ends, err := p.endOffsets(ctx)
	if err != nil {
		return err
	}
	p.client.AddConsumePartitions(ends)

	byID := map[string]*Request{}
	byBody := map[string]*Request{}
	for _, r := range reqs {
		if r.Kind == Malformed {
			byBody[string(r.Body)] = r
		} else {
			byID[r.Label] = r
		}
	}

	var mu sync.Mutex // guards the requests: produce callbacks run on the client's goroutines
	settled := 0      // requests answered or that could not be sent
	notSent := func(r *Request, err error) {
		mu.Lock()
		defer mu.Unlock()
		r.SendErr = err
		if !r.Answered {
			settled++
		}
	}
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for _, r := range reqs {
			if ctx.Err() != nil {
				notSent(r, ErrNotSent)
				continue
			}
			mu.Lock()
			r.SentAt = time.Now()
			mu.Unlock()
			record := &kgo.Record{Topic: p.topics.Requested, Key: r.Key, Value: r.Body}
			// Blocks while the client's buffer is full; returns at once when ctx is done.
			p.client.Produce(ctx, record, func(_ *kgo.Record, err error) {
				if err != nil {
					notSent(r, err)
				}
			})
		}
	}()

	for ctx.Err() == nil {
		mu.Lock()
		done := settled == len(reqs)
		mu.Unlock()
		if done {
			break
		}
		// Short polls, so that a request that could not be sent ends the wait too.
		pollCtx, cancelPoll := context.WithTimeout(ctx, 250*time.Millisecond)
		fetches := p.client.PollFetches(pollCtx)
		cancelPoll()
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				cancel() // the sending stops
				<-sending
				return fmt.Errorf("reading the answers from %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		now := time.Now()
		mu.Lock()
		fetches.EachRecord(func(rec *kgo.Record) {
			r := match(rec, byID, byBody)
			if r == nil || r.Answered {
				return // another client's answer, or a duplicate (delivery is at least once)
			}
			r.Answered = true
			r.RoundTrip = now.Sub(r.SentAt)
			r.AnswerTopic, r.AnswerPartition, r.AnswerOffset = rec.Topic, rec.Partition, rec.Offset
			r.ReasonCode = header(rec, poison.HeaderReasonCode)
			r.Unexpected = p.check(r, rec)
			if r.SendErr == nil {
				settled++
			}
			answered(r)
		})
		mu.Unlock()
	}
	<-sending
	// Every produce returns (acknowledged or failed) before the results are read. Records still
	// buffered when ctx ended fail at once (not sent); those already on their way are waited for.
	return p.client.Flush(context.WithoutCancel(ctx))
}

// endOffsets are the answer topics' end offsets, where the answers to this run will start.
func (p *Pinger) endOffsets(ctx context.Context) (map[string]map[int32]kgo.Offset, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	topics := []string{p.topics.Succeeded, p.topics.Failed}
	listed, err := kadm.NewClient(p.client).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s and %s: %w", topics[0], topics[1], err)
	}
	for _, t := range topics {
		if o, ok := listed.Lookup(t, -1); ok && errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("the topic %s does not exist: is TOPIC_PREFIX right? (`pingpong topics create` creates it)", t)
		}
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s and %s: %w", topics[0], topics[1], err)
	}
	ends := map[string]map[int32]kgo.Offset{}
	listed.Each(func(o kadm.ListedOffset) {
		if ends[o.Topic] == nil {
			ends[o.Topic] = map[int32]kgo.Offset{}
		}
		ends[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	for _, t := range topics {
		if len(ends[t]) == 0 {
			return nil, fmt.Errorf("the topic %s does not exist: is TOPIC_PREFIX right? (`pingpong topics create` creates it)", t)
		}
	}
	return ends, nil
}

// match finds the request an answer belongs to: by transaction id, else (a malformed request
// has none) by the original request on a poison record.
func match(rec *kgo.Record, byID, byBody map[string]*Request) *Request {
	if r := byID[string(rec.Key)]; r != nil {
		return r
	}
	if r := byID[header(rec, handlers.TransactionIDMetadataKey)]; r != nil {
		return r
	}
	return byBody[header(rec, poison.HeaderOriginal)]
}

// check compares an answer with the one the request must get.
func (p *Pinger) check(r *Request, rec *kgo.Record) string {
	want, wantCode := p.topics.Failed, string(r.Kind)
	if r.Kind == Ping {
		want, wantCode = p.topics.Succeeded, ""
	}
	switch {
	case rec.Topic != want:
		return fmt.Sprintf("answered on %s (%s), want %s", rec.Topic, header(rec, poison.HeaderReason), want)
	case r.ReasonCode != wantCode:
		return fmt.Sprintf("reason code %q, want %q", r.ReasonCode, wantCode)
	case r.Kind == Ping && string(rec.Value) != string(handlers.PongAnswer([]byte(strconv.Quote(r.Label)))):
		return fmt.Sprintf("answer %s is not the pong", rec.Value)
	}
	return ""
}

func header(rec *kgo.Record, key string) string {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Summary counts a run's results.
type Summary struct {
	Sent, Answered, Unexpected, NotSent int
	Unanswered                          []*Request
	RoundTrips                          []time.Duration // sorted
}

// Summarize counts reqs after Run.
func Summarize(reqs []*Request) Summary {
	var s Summary
	for _, r := range reqs {
		switch {
		case r.SendErr != nil:
			s.NotSent++
			continue
		case r.Answered:
			s.Answered++
			s.RoundTrips = append(s.RoundTrips, r.RoundTrip)
			if r.Unexpected != "" {
				s.Unexpected++
			}
		default:
			s.Unanswered = append(s.Unanswered, r)
		}
		s.Sent++
	}
	slices.Sort(s.RoundTrips)
	return s
}

// OK tells whether every request was sent and got the answer it must get.
func (s Summary) OK() bool { return s.NotSent == 0 && len(s.Unanswered) == 0 && s.Unexpected == 0 }

// Percentile is the nearest-rank percentile of the round trips (p from 0 to 100).
func (s Summary) Percentile(p float64) time.Duration {
	if len(s.RoundTrips) == 0 {
		return 0
	}
	rank := int(float64(len(s.RoundTrips))*p/100+0.999999) - 1
	return s.RoundTrips[min(max(rank, 0), len(s.RoundTrips)-1)]
}

// WriteAnswer prints one answered request on a line; width aligns the labels.
func WriteAnswer(w io.Writer, r *Request, width int) {
	status := ""
	if r.Unexpected != "" {
		status = "  UNEXPECTED: " + r.Unexpected
	}
	fmt.Fprintf(w, "%-*s  %-10s  %8s  %s:%d:%d%s\n", width, r.Label, r.Outcome(), roundTrip(r.RoundTrip),
		r.AnswerTopic, r.AnswerPartition, r.AnswerOffset, status)
}

// listed is how many requests WriteSummary names, of those not sent and of those unanswered.
const listed = 10

// WriteSummary prints the summary and the requests that went wrong (the first few of each
// kind). After an interrupt it names none: they were stopped, not failed.
func WriteSummary(w io.Writer, s Summary, reqs []*Request, timeout time.Duration, interrupted bool) {
	if !interrupted {
		var failed []*Request
		for _, r := range reqs {
			if r.SendErr != nil {
				failed = append(failed, r)
			}
		}
		for i, r := range failed[:min(len(failed), listed)] {
			fmt.Fprintf(w, "%s: not sent: %v\n", r.Label, r.SendErr)
			if i == listed-1 && len(failed) > listed {
				fmt.Fprintf(w, "... and %d more not sent\n", len(failed)-listed)
			}
		}
		for i, r := range s.Unanswered[:min(len(s.Unanswered), listed)] {
			fmt.Fprintf(w, "%s: no answer within %s\n", r.Label, timeout)
			if i == listed-1 && len(s.Unanswered) > listed {
				fmt.Fprintf(w, "... and %d more without an answer within %s\n", len(s.Unanswered)-listed, timeout)
			}
		}
	}
	if interrupted {
		fmt.Fprint(w, "interrupted: ")
	}
	fmt.Fprintf(w, "sent %d, answered %d, unanswered %d, unexpected %d", s.Sent, s.Answered, len(s.Unanswered), s.Unexpected)
	if s.NotSent > 0 || interrupted {
		fmt.Fprintf(w, ", not sent %d", s.NotSent)
	}
	fmt.Fprintln(w)
	if len(s.RoundTrips) > 0 {
		fmt.Fprintf(w, "round trip: min %s, p50 %s, p99 %s, max %s\n", roundTrip(s.RoundTrips[0]),
			roundTrip(s.Percentile(50)), roundTrip(s.Percentile(99)), roundTrip(s.RoundTrips[len(s.RoundTrips)-1]))
	}
}

func roundTrip(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
