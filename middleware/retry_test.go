package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/middleware"
	"github.com/pingpong/pingpong/source"
)

// failing fails its first n runs, then answers; it counts its runs.
func failing(n int, runs *int) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		*runs++
		if *runs <= n {
			return nil, errors.New("transient")
		}
		return []*message.Message{message.NewMessage("answer", nil)}, nil
	}
}

var quickRetry = wmmiddleware.Retry{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, Multiplier: 2}

func TestRetryAfterFirstFailureRetriesAsWatermillDoes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
		retry    wmmiddleware.Retry
		wantRuns int
		wantErr  bool
	}{
		{name: "first attempt succeeds", failures: 0, retry: quickRetry, wantRuns: 1},
		{name: "succeeds on the third attempt", failures: 2, retry: quickRetry, wantRuns: 3},
		{name: "gives up after 1 + MaxRetries attempts", failures: 10, retry: quickRetry, wantRuns: 4, wantErr: true},
		{name: "ShouldRetry false: one attempt", failures: 10, retry: func() wmmiddleware.Retry {
			r := quickRetry
			r.ShouldRetry = func(wmmiddleware.RetryParams) bool { return false }
			return r
		}(), wantRuns: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := 0
			h := middleware.RetryAfterFirstFailure(tc.retry)(failing(tc.failures, &runs))
			answers, err := h(message.NewMessage("in", nil))
			if runs != tc.wantRuns {
				t.Errorf("the handler ran %d times, want %d", runs, tc.wantRuns)
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("error %v, want an error: %v", err, tc.wantErr)
			}
			if !tc.wantErr && (len(answers) != 1 || answers[0].UUID != "answer") {
				t.Errorf("answers %v, want the successful attempt's", answers)
			}
		})
	}
}

func TestRetryAfterFirstFailureDoesNotAttemptACancelledMessage(t *testing.T) {
	runs := 0
	h := middleware.RetryAfterFirstFailure(quickRetry)(failing(0, &runs))
	msg := message.NewMessage("in", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msg.SetContext(ctx)
	if _, err := h(msg); !errors.Is(err, context.Canceled) || runs != 0 {
		t.Errorf("got %v after %d runs, want context.Canceled and no run", err, runs)
	}
}

// The waits between the attempts of a failing request, read from the handler's own clock
// through the real chain, are the documented schedule (docs/reliability.md): the initial
// interval, then doubling. Watermill's Retry drew a second backoff step for every failure, so
// the waits were every other step (2, 8, 32 times the initial interval).
func TestRetryWaitsAreTheDocumentedSchedule(t *testing.T) {
	const initial = 100 * time.Millisecond
	var attempts []time.Time
	hs := newHarness(t, func(msg *message.Message) ([]*message.Message, error) {
		attempts = append(attempts, time.Now())
		return nil, errors.New("broker unavailable")
	}, logrus.InfoLevel)
	hs.chain = middleware.Chain(hs.handler, middleware.ChainConfig{
		Publisher: hs.pub, SucceededTopic: "t.succeeded", FailedTopic: "t.failed",
		Retry:  wmmiddleware.Retry{MaxRetries: 4, InitialInterval: initial, MaxInterval: 10 * time.Second, Multiplier: 2, RandomizationFactor: 0},
		Logger: logrus.NewEntry(hs.logger), Metrics: hs.metrics,
		Source: func(*message.Message) source.Source { return requestSource },
	})
	if _, err := hs.chain(request(`{"transaction-id": 1, "payload": {"message": "ping"}}`)); err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 5 {
		t.Fatalf("%d attempts, want 1 + 4 retries", len(attempts))
	}
	for i, want := range []time.Duration{initial, 2 * initial, 4 * initial, 8 * initial} {
		// At least the wait; below the next step of the schedule, which is where the doubled
		// schedule put it.
		if got := attempts[i+1].Sub(attempts[i]); got < want || got >= 2*want {
			t.Errorf("wait %d: %v, want %v", i+1, got, want)
		}
	}
	if n := len(hs.pub.on("t.failed")); n != 1 {
		t.Errorf("%d poison records, want 1", n)
	}
}

// A retry that fails in a way not to be retried (a panic) stops the retries at once and is
// returned as such.
func TestRetryStopsAtAFailureNotToBeRetried(t *testing.T) {
	runs := 0
	h := middleware.RetryAfterFirstFailure(func() wmmiddleware.Retry {
		r := quickRetry
		r.ShouldRetry = middleware.Transient
		return r
	}())(func(msg *message.Message) ([]*message.Message, error) {
		runs++
		if runs == 1 {
			return nil, errors.New("transient")
		}
		return nil, wmmiddleware.RecoveredPanicError{V: "boom"}
	})
	_, err := h(message.NewMessage("1", nil))
	var panicked wmmiddleware.RecoveredPanicError
	if runs != 2 || !errors.As(err, &panicked) {
		t.Fatalf("runs %d, err %v; want 2 runs and the panic", runs, err)
	}
}
