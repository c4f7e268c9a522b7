package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/middleware"
	"github.com/pingpong/pingpong/poison"
	"github.com/pingpong/pingpong/source"
)

// recordingPublisher keeps what is published, and fails the first failures[topic] publishes to
// a topic (-1: every one).
type recordingPublisher struct {
	mu        sync.Mutex
	published map[string][]*message.Message
	failures  map[string]int
}

func newPublisher() *recordingPublisher {
	return &recordingPublisher{published: map[string][]*message.Message{}, failures: map[string]int{}}
}

func (p *recordingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.failures[topic]; n != 0 {
		if n > 0 {
			p.failures[topic] = n - 1
		}
		return errors.New("broker unavailable")
	}
	p.published[topic] = append(p.published[topic], msgs...)
	return nil
}

func (p *recordingPublisher) Close() error { return nil }

func (p *recordingPublisher) on(topic string) []*message.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published[topic]
}

type harness struct {
	pub     *recordingPublisher
	metrics *middleware.Metrics
	logs    *bytes.Buffer
	chain   message.HandlerFunc
	handler message.HandlerFunc
	logger  *logrus.Logger
}

var requestSource = source.Source{
	Topic: "t.requested", Partition: 3, Offset: 41,
	Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Key: []byte("k1"),
}

func newHarness(t testing.TB, h message.HandlerFunc, level logrus.Level) *harness {
	t.Helper()
	logs := &bytes.Buffer{}
	logger := logrus.New()
	logger.SetOutput(logs)
	logger.SetLevel(level)
	logger.SetFormatter(&logrus.JSONFormatter{})
	hs := &harness{pub: newPublisher(), metrics: middleware.NewMetrics(prometheus.NewRegistry()), logs: logs, handler: h, logger: logger}
	hs.chain = hs.chainWith(hs.pub)
	return hs
}

// chainWith builds the harness's chain around its handler, publishing with pub.
func (hs *harness) chainWith(pub message.Publisher) message.HandlerFunc {
	return middleware.Chain(hs.handler, middleware.ChainConfig{
		Publisher:      pub,
		SucceededTopic: "t.succeeded",
		FailedTopic:    "t.failed",
		Retry: wmmiddleware.Retry{
			MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, Multiplier: 2,
		},
		MaxOriginalBytes: 64,
		Logger:           logrus.NewEntry(hs.logger),
		Metrics:          hs.metrics,
		Source:           func(*message.Message) source.Source { return requestSource },
	})
}

func pingpong(msg *message.Message) ([]*message.Message, error) {
	return handlers.PingPong{}.Handle(msg)
}

func request(body string) *message.Message { return message.NewMessage("in-1", []byte(body)) }

func (hs *harness) outcome(outcome handlers.Outcome) float64 {
	return testutil.ToFloat64(hs.metrics.Requests.WithLabelValues(string(outcome)))
}

func TestPongIsPublishedWithCorrelationAndKey(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	in := request(`{"transaction-id": "a1", "payload": {"message": "ping"}}`)
	in.Metadata.Set(wmmiddleware.CorrelationIDMetadataKey, "corr-7")
	if _, err := hs.chain(in); err != nil {
		t.Fatal(err)
	}
	pongs := hs.pub.on("t.succeeded")
	if len(pongs) != 1 || len(hs.pub.on("t.failed")) != 0 {
		t.Fatalf("want one pong and nothing poisoned, got %d and %d", len(pongs), len(hs.pub.on("t.failed")))
	}
	if got := string(pongs[0].Payload); got != `{"transaction-id": "a1", "payload": {"message": "pong"}}` {
		t.Errorf("pong %s", got)
	}
	if got := pongs[0].Metadata.Get(wmmiddleware.CorrelationIDMetadataKey); got != "corr-7" {
		t.Errorf("the answer carries the request's correlation id, got %q", got)
	}
	if got := pongs[0].Metadata.Get(handlers.TransactionIDMetadataKey); got != "a1" {
		t.Errorf("transaction id metadata %q", got)
	}
	if hs.outcome(handlers.OutcomePong) != 1 || testutil.ToFloat64(hs.metrics.InFlight) != 0 {
		t.Errorf("metrics: pong=%v in_flight=%v", hs.outcome(handlers.OutcomePong), testutil.ToFloat64(hs.metrics.InFlight))
	}
	if testutil.CollectAndCount(hs.metrics.Duration) != 1 || testutil.CollectAndCount(hs.metrics.EndToEnd) != 1 {
		t.Error("the durations are observed")
	}
}

func TestRequestWithoutCorrelationIDGetsOne(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	if _, err := hs.chain(request(`{"transaction-id": 1, "payload": {"message": "ping"}}`)); err != nil {
		t.Fatal(err)
	}
	if id := hs.pub.on("t.succeeded")[0].Metadata.Get(wmmiddleware.CorrelationIDMetadataKey); id == "" {
		t.Error("an answer to a request without a correlation id gets a new one")
	}
}

func TestRejectionsArePoisonedAtOnceWithHeaders(t *testing.T) {
	for _, tc := range []struct {
		name, body, answer string
		code               poison.ReasonCode
		outcome            handlers.Outcome
		txID               string
	}{
		{"not ping", `{"transaction-id": "n", "payload": {"message": "pang"}}`,
			`{"transaction-id": "n", "payload": {"message": "Error the message doesn't contain 'ping'"}}`,
			poison.ReasonNotPing, handlers.OutcomeNotPing, "n"},
		{"malformed", `{"payload": {"message": "ping"}}`, `{"message": "Error in the format of the Kafka event"}`,
			poison.ReasonMalformed, handlers.OutcomeMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, pingpong, logrus.InfoLevel)
			in := request(tc.body)
			in.Metadata.Set(poison.HeaderReplayCount, "2")
			in.Metadata.Set(poison.HeaderReason, "forged by the sender")
			before := time.Now().UTC()
			if _, err := hs.chain(in); err != nil {
				t.Fatalf("a rejection is answered, not nacked: %v", err)
			}
			failed := hs.pub.on("t.failed")
			if len(failed) != 1 || len(hs.pub.on("t.succeeded")) != 0 {
				t.Fatalf("want one record on .failed only, got %d", len(failed))
			}
			rec := failed[0]
			if string(rec.Payload) != tc.answer {
				t.Errorf("answer %s, want %s", rec.Payload, tc.answer)
			}
			want := map[string]string{
				poison.HeaderReasonCode:           string(tc.code),
				poison.HeaderTopic:                "t.requested",
				poison.HeaderPartition:            "3",
				poison.HeaderOffset:               "41",
				poison.HeaderSourceTimestamp:      "2026-01-02T03:04:05Z",
				poison.HeaderAttempts:             "1", // never retried
				poison.HeaderOriginal:             tc.body,
				poison.HeaderOriginalKey:          "k1",
				poison.HeaderReplayCount:          "2", // carried over for dlq replay's bound
				handlers.TransactionIDMetadataKey: tc.txID,
			}
			for k, v := range want {
				if got := rec.Metadata.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if r := rec.Metadata.Get(poison.HeaderReason); r == "" || r == "forged by the sender" {
				t.Errorf("reason_poisoned %q: set by the service, not taken from the request", r)
			}
			failedAt, err := time.Parse(time.RFC3339Nano, rec.Metadata.Get(poison.HeaderFailedAt))
			if err != nil || failedAt.Before(before.Add(-time.Second)) {
				t.Errorf("failed_at %q", rec.Metadata.Get(poison.HeaderFailedAt))
			}
			if rec.Metadata.Get(wmmiddleware.CorrelationIDMetadataKey) == "" {
				t.Error("the poison record carries a correlation id")
			}
			if hs.outcome(tc.outcome) != 1 || testutil.ToFloat64(hs.metrics.Poisoned.WithLabelValues(string(tc.code))) != 1 {
				t.Error("the outcome and the poisoning are counted")
			}
			if testutil.ToFloat64(hs.metrics.Retries) != 0 {
				t.Error("a rejection is not retried")
			}
		})
	}
}

func TestTransientPublishFailureIsRetried(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	hs.pub.failures["t.succeeded"] = 2
	if _, err := hs.chain(request(`{"transaction-id": "r", "payload": {"message": "ping"}}`)); err != nil {
		t.Fatal(err)
	}
	if len(hs.pub.on("t.succeeded")) != 1 || len(hs.pub.on("t.failed")) != 0 {
		t.Fatalf("retried into one pong, got %d pongs and %d poisoned", len(hs.pub.on("t.succeeded")), len(hs.pub.on("t.failed")))
	}
	if got := testutil.ToFloat64(hs.metrics.Retries); got != 2 {
		t.Errorf("retries_total %v, want 2", got)
	}
	if !strings.Contains(hs.logs.String(), `"attempts":3`) {
		t.Errorf("the log line says how many attempts it took:\n%s", hs.logs)
	}
}

func TestExhaustedRetriesArePoisoned(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	hs.pub.failures["t.succeeded"] = -1
	if _, err := hs.chain(request(`{"transaction-id": 9, "payload": {"message": "ping"}}`)); err != nil {
		t.Fatal(err)
	}
	failed := hs.pub.on("t.failed")
	if len(failed) != 1 {
		t.Fatalf("want the request poisoned, got %d records", len(failed))
	}
	rec := failed[0]
	if got, want := rec.Metadata.Get(poison.HeaderAttempts), strconv.Itoa(3+1); got != want {
		t.Errorf("attempts %s, want %s (1 + MaxRetries)", got, want)
	}
	if got := rec.Metadata.Get(poison.HeaderReasonCode); got != string(poison.ReasonRetriesExhausted) {
		t.Errorf("reason code %s", got)
	}
	wantPrefix := `{"transaction-id": 9, "payload": {"message": "Error processing the event: publishing the answer to t.succeeded: broker unavailable`
	if !strings.HasPrefix(string(rec.Payload), wantPrefix) {
		t.Errorf("answer %s\nwant prefix %s", rec.Payload, wantPrefix)
	}
	if hs.outcome(handlers.OutcomeError) != 1 {
		t.Error("counted as an error")
	}
}

func TestPanicIsPoisonedNotRetried(t *testing.T) {
	runs := 0
	hs := newHarness(t, func(*message.Message) ([]*message.Message, error) { runs++; panic("boom") }, logrus.InfoLevel)
	if _, err := hs.chain(request(`{"transaction-id": "p", "payload": {"message": "ping"}}`)); err != nil {
		t.Fatalf("a panic is answered, not a crash or a nack: %v", err)
	}
	if runs != 1 {
		t.Errorf("a panic is not retried: ran %d times", runs)
	}
	failed := hs.pub.on("t.failed")
	if len(failed) != 1 {
		t.Fatalf("want the request poisoned, got %d", len(failed))
	}
	if got := string(failed[0].Payload); got != `{"transaction-id": "p", "payload": {"message": "Error processing the event: panic: boom"}}` {
		t.Errorf("answer %s", got)
	}
	if got := failed[0].Metadata.Get(poison.HeaderReasonCode); got != string(poison.ReasonPanic) {
		t.Errorf("reason code %s", got)
	}
	if testutil.ToFloat64(hs.metrics.Panics) != 1 {
		t.Error("panics_total counts it")
	}
	if !strings.Contains(hs.logs.String(), "goroutine") {
		t.Error("the stack trace goes to the logs")
	}
}

func TestNothingPublishableIsNackedNotLost(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	hs.pub.failures["t.succeeded"] = -1
	hs.pub.failures["t.failed"] = -1
	_, err := hs.chain(request(`{"transaction-id": "x", "payload": {"message": "ping"}}`))
	if err == nil {
		t.Fatal("when neither the answer nor the poison record can be published the handler fails, so the message is nacked and redelivered")
	}
	if testutil.ToFloat64(hs.metrics.Nacks) != 1 {
		t.Error("nacks_total counts it")
	}
	for _, o := range []handlers.Outcome{handlers.OutcomePong, handlers.OutcomeError} {
		if hs.outcome(o) != 0 {
			t.Errorf("a nacked request has no outcome yet, %s counted", o)
		}
	}
}

func TestShutdownDoesNotPoison(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	hs.pub.failures["t.succeeded"] = -1
	in := request(`{"transaction-id": "s", "payload": {"message": "ping"}}`)
	ctx, cancel := context.WithCancel(context.Background())
	in.SetContext(ctx)
	cancel()
	if _, err := hs.chain(in); err == nil {
		t.Fatal("an interrupted request is left for redelivery")
	}
	if n := len(hs.pub.on("t.failed")); n != 0 {
		t.Errorf("shutting down poisoned %d requests", n)
	}
}

// A request the transport gave up (its context canceled: its transaction aborted, its key
// rewound, or the service stopping) is no failure: it is logged at debug only, while a request
// that could not be answered is an error.
func TestAGivenUpRequestIsNotLoggedAsAnError(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	hs.pub.failures["t.succeeded"] = -1
	hs.pub.failures["t.failed"] = -1
	given := request(`{"transaction-id": "g", "payload": {"message": "ping"}}`)
	ctx, cancel := context.WithCancel(context.Background())
	given.SetContext(ctx)
	cancel()
	if _, err := hs.chain(given); err == nil {
		t.Fatal("a given-up request is left for redelivery")
	}
	if hs.logs.Len() != 0 {
		t.Errorf("a given-up request was logged at info or above: %s", hs.logs)
	}
	if _, err := hs.chain(request(`{"transaction-id": "f", "payload": {"message": "ping"}}`)); err == nil {
		t.Fatal("a request whose answer cannot be published is nacked")
	}
	if !strings.Contains(hs.logs.String(), `"level":"error"`) {
		t.Errorf("a request that could not be answered was not logged as an error: %s", hs.logs)
	}
}

func TestLargeOriginalIsOmitted(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	body := `{"transaction-id": "big", "payload": {"message": "` + strings.Repeat("x", 100) + `"}}`
	if _, err := hs.chain(request(body)); err != nil {
		t.Fatal(err)
	}
	rec := hs.pub.on("t.failed")[0]
	if _, ok := rec.Metadata[poison.HeaderOriginal]; ok {
		t.Error("a request above MaxOriginalBytes is not carried")
	}
	if got := rec.Metadata.Get(poison.HeaderOriginalOmitted); !strings.Contains(got, strconv.Itoa(len(body))+" bytes") {
		t.Errorf("original_omitted %q says why", got)
	}
}

func TestPayloadsAreLoggedOnlyAtDebug(t *testing.T) {
	body := `{"transaction-id": "secret-payload", "payload": {"message": "pang"}}`
	info := newHarness(t, pingpong, logrus.InfoLevel)
	if _, err := info.chain(request(body)); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"transaction_id":"secret-payload"`, `"correlation_id":`, `"topic":"t.requested"`, `"partition":3`, `"offset":41`, `"reason_code":"not_ping"`} {
		if !strings.Contains(info.logs.String(), field) {
			t.Errorf("the event's line carries %s:\n%s", field, info.logs)
		}
	}
	if strings.Contains(info.logs.String(), `"payload"`) {
		t.Errorf("no payload at info level:\n%s", info.logs)
	}
	debug := newHarness(t, pingpong, logrus.DebugLevel)
	if _, err := debug.chain(request(body)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(debug.logs.String(), `"payload":"{\"transaction-id\"`) {
		t.Errorf("the payload at debug level:\n%s", debug.logs)
	}
}

// In exactly-once mode a request whose answer failed in more aborted transactions than the
// retries allow is poisoned at once, as retries exhausted, without its answer being tried again;
// one within the retries is answered.
func TestARequestWhoseAnswerFailedInTooManyTransactionsIsPoisoned(t *testing.T) {
	for _, tc := range []struct {
		aborted  int
		poisoned bool
	}{{3, false}, {4, true}} { // the harness retries 3 times
		hs := newHarness(t, pingpong, logrus.InfoLevel)
		chain := middleware.Chain(hs.handler, middleware.ChainConfig{
			Publisher: hs.pub, SucceededTopic: "t.succeeded", FailedTopic: "t.failed",
			Retry:            wmmiddleware.Retry{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, Multiplier: 2},
			MaxOriginalBytes: 64, Logger: logrus.NewEntry(hs.logger), Metrics: hs.metrics,
			Source: func(*message.Message) source.Source {
				src := requestSource
				src.AbortedAnswers = tc.aborted
				return src
			},
		})
		if _, err := chain(request(`{"transaction-id": "a", "payload": {"message": "ping"}}`)); err != nil {
			t.Fatal(err)
		}
		pongs, poisoned := len(hs.pub.on("t.succeeded")), hs.pub.on("t.failed")
		if !tc.poisoned {
			if pongs != 1 || len(poisoned) != 0 {
				t.Errorf("%d aborted answers: %d pongs, %d poison records; want the pong", tc.aborted, pongs, len(poisoned))
			}
			continue
		}
		if pongs != 0 || len(poisoned) != 1 {
			t.Fatalf("%d aborted answers: %d pongs, %d poison records; want one poison record", tc.aborted, pongs, len(poisoned))
		}
		if code := poisoned[0].Metadata.Get(poison.HeaderReasonCode); code != string(poison.ReasonRetriesExhausted) {
			t.Errorf("reason code %q, want %q", code, poison.ReasonRetriesExhausted)
		}
	}
}
