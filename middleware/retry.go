package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// RetryAfterFirstFailure is Watermill's Retry middleware, entered only once a first attempt has
// failed. Watermill's Retry sets up its backoff (a backoff, three options and four closures)
// for every message before the first attempt; nearly every message succeeds at once, and that
// set-up was 13 of the chain's 37 allocations per message (BenchmarkChain). Here the
// first attempt runs on its own, and a failure is handed to Watermill's Retry as its first
// attempt, so the retries, their backoff, ShouldRetry, the hooks and the log lines are exactly
// Watermill's.
func RetryAfterFirstFailure(r wmmiddleware.Retry) message.HandlerMiddleware {
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
			if r.ShouldRetry != nil && !r.ShouldRetry(wmmiddleware.RetryParams{Err: err, RetryNum: 0, Delay: r.InitialInterval}) {
				return answers, err
			}
			if r.ResetContextOnRetry {
				msg.SetContext(ctx)
			}
			attempted := false
			return r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				if !attempted {
					attempted = true
					return answers, err // the first attempt, already made
				}
				return h(msg)
			})(msg)
		}
	}
}
