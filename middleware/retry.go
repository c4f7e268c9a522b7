package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/cenkalti/backoff/v5"
)

// RetryAfterFirstFailure is Watermill's Retry middleware, entered only once a first attempt has
// failed. Watermill's Retry sets up its backoff (a backoff, three options and four closures)
// for every message before the first attempt; nearly every message succeeds at once, and that
// set-up was 13 of the chain's 37 allocations per message (BenchmarkChain). Here the
// first attempt runs on its own, and a failure is handed to Watermill's Retry as its first
// attempt, so the retries, their backoff, the hooks and the log lines are Watermill's.
//
// ShouldRetry is asked here rather than by Watermill's Retry, which builds ShouldRetry's
// parameters with a call of its backoff's NextBackOff: every failure then took two steps of the
// backoff, and the waits grew by the square of the multiplier (200 ms, 800 ms, 3.2 s instead of
// 100, 200, 400 ms). Here a failure ShouldRetry refuses stops Watermill's Retry as a permanent
// error (cenkalti/backoff's, which Watermill's Retry runs on and unwraps), and the backoff
// advances once a retry. OnRetryHook would advance it once more: leave it unset.
func RetryAfterFirstFailure(r wmmiddleware.Retry) message.HandlerMiddleware {
	shouldRetry := r.ShouldRetry
	r.ShouldRetry = nil
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			if err := ctx.Err(); err != nil {
				return nil, err // as Watermill's Retry: a cancelled message is not attempted
			}
			answers, err := h(msg)
			if err == nil {
				return answers, nil
			}
			// A failure that is not to be retried (a rejection, three in ten of the benchmark's mix)
			// needs no backoff either. Watermill passes the next delay; before any retry that is
			// the initial interval.
			if shouldRetry != nil && !shouldRetry(wmmiddleware.RetryParams{Err: err, RetryNum: 0, Delay: r.InitialInterval}) {
				return answers, err
			}
			if r.ResetContextOnRetry {
				msg.SetContext(ctx)
			}
			attempts := 1
			return r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				if attempts == 1 {
					attempts++
					return answers, err // the first attempt, already made
				}
				retried, retryErr := h(msg)
				if retryErr != nil && shouldRetry != nil &&
					!shouldRetry(wmmiddleware.RetryParams{Err: retryErr, RetryNum: attempts - 1, Delay: r.InitialInterval}) {
					retryErr = backoff.Permanent(retryErr)
				}
				attempts++
				return retried, retryErr
			})(msg)
		}
	}
}
