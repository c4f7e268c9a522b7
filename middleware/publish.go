package middleware

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pingpong/pingpong/handlers"
)

// PublishAnswers publishes the messages the handler returns to topic, inside the middleware chain,
// and returns none to the router. A failed publish is then an error of the handler that Retry
// retries and the poison queue answers; see the package documentation.
func PublishAnswers(pub message.Publisher, topic string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			answers, err := h(msg)
			if err != nil || len(answers) == 0 {
				return nil, err
			}
			for _, answer := range answers {
				// The request's context carries the handler name for Watermill's publish metrics.
				answer.SetContext(msg.Context())
			}
			if err := pub.Publish(topic, answers...); err != nil {
				return nil, fmt.Errorf("publishing the answer to %s: %w", topic, err)
			}
			EventFrom(msg).TransactionID = answers[0].Metadata.Get(handlers.TransactionIDMetadataKey)
			return nil, nil
		}
	}
}
