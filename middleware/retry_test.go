package middleware_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/pingpong/pingpong/middleware"
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

// The waits between attempts are the documented schedule, the initial interval growing by the
// multiplier once a retry (docs/reliability.md), read from the times the handler ran: 20, 40, 80
// and 160 ms here, with no jitter. Watermill's Retry with a ShouldRetry advanced its backoff twice
// a failure, and waited 40, 160, 640 and 1,000 ms.
func TestRetryWaitsAreTheDocumentedSchedule(t *testing.T) {
	r := wmmiddleware.Retry{MaxRetries: 4, InitialInterval: 20 * time.Millisecond, MaxInterval: time.Second,
		Multiplier: 2, RandomizationFactor: 0, ShouldRetry: middleware.Transient}
	var runs []time.Time
	h := middleware.RetryAfterFirstFailure(r)(func(*message.Message) ([]*message.Message, error) {
		runs = append(runs, time.Now())
		return nil, errors.New("transient")
	})
	if _, err := h(message.NewMessage("1", nil)); err == nil {
		t.Fatal("a handler that always fails succeeded")
	}
	want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond}
	if len(runs) != len(want)+1 {
		t.Fatalf("%d attempts, want %d (1 + RETRY_MAX_RETRIES)", len(runs), len(want)+1)
	}
	for i, w := range want {
		// A wait is never shorter than its interval; a loaded machine may make it a little longer,
		// but not the next interval's length.
		if got := runs[i+1].Sub(runs[i]); got < w || got >= w*3/2+15*time.Millisecond {
			t.Errorf("wait before retry %d: %v, want %v", i+1, got.Round(time.Millisecond), w)
		}
	}
}
