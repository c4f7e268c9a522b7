package middleware

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pingpong/pingpong/source"
)

// AnswersFailedInTransactions is the error of a request whose answer could not be written in
// more transactions than the retries allow: the poison queue answers it as retries exhausted.
type AnswersFailedInTransactions struct{ Transactions int }

func (e AnswersFailedInTransactions) Error() string {
	return fmt.Sprintf("its answer could not be written in %d transactions, each aborted", e.Transactions)
}

// GiveUpAfterAbortedAnswers is Retry's bound across transactions, in exactly-once mode. There a
// failed write aborts the transaction (a write that failed may still have landed, and only an
// abort discards it), which cancels the request's retries; it is delivered again in the next
// transaction. The transport counts those aborts (source.Source.AbortedAnswers); once they pass
// maxRetries the request fails here, before its answer is tried again, and the poison queue
// answers it, so a partition whose answers can never be written moves on as in at-least-once
// mode.
func GiveUpAfterAbortedAnswers(sourceOf source.Func, maxRetries int) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		if sourceOf == nil {
			return h
		}
		return func(msg *message.Message) ([]*message.Message, error) {
			if n := sourceOf(msg).AbortedAnswers; n > maxRetries {
				return nil, AnswersFailedInTransactions{Transactions: n}
			}
			return h(msg)
		}
	}
}
