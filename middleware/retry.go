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
// attempt, so the retries, their backoff, the hooks and the log lines are Watermill's.
//
// ShouldRetry is asked here, not by Watermill's Retry: Watermill builds ShouldRetry's parameters
// with a call to the backoff's NextBackOff(), which advances the backoff a second step for each
// failure, so the waits were every other one of the schedule (200 ms, 800 ms, 3.2 s, ... rather
// than 100 ms, 200 ms, 400 ms, ...). A failure ShouldRetry refuses ends Watermill's loop as a
// success of the wrapped handler and is returned from here. OnRetryHook draws a step too; the
// chain sets none.
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
			shouldRetry := r.ShouldRetry
			watermillRetry := r
			watermillRetry.ShouldRetry = nil
			attempted, retryNum := false, 0
			var final error // a failure ShouldRetry refused
			answers, err = watermillRetry.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				if !attempted {
					attempted = true
					return answers, err // the first attempt, already made
				}
				retryNum++
				answers, err := h(msg)
				if err != nil && shouldRetry != nil && !shouldRetry(wmmiddleware.RetryParams{Err: err, RetryNum: retryNum}) {
					final = err
					return answers, nil // stops Watermill's loop
				}
				return answers, err
			})(msg)
			if final != nil {
				return answers, final
			}
			return answers, err
		}
	}
}
