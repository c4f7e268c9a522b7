package handlers

import (
	"github.com/ThreeDotsLabs/watermill/message"
)

// TransactionIDMetadataKey is set on every answer to the request's transaction id (as text).
// The Kafka transport makes it the record key, so answers to one transaction share a partition.
const TransactionIDMetadataKey = "transaction_id"

// PingPong answers requests: a pong for a ping, a *Rejection error for anything else.
type PingPong struct {
	// MaxRequestBytes bounds a request's size; 0 means DefaultMaxRequestBytes, -1 no limit.
	MaxRequestBytes int
}

// Handle is a Watermill handler. It returns the pong to publish on .succeeded, or a *Rejection,
// which the poison middleware turns into the answer on .failed.
func (h PingPong) Handle(msg *message.Message) ([]*message.Message, error) {
	req, err := Decode(msg.Payload, h.maxRequestBytes())
	if err != nil {
		return nil, err
	}
	if req.Message != "ping" {
		return nil, notPing(req.TransactionID)
	}
	pong := message.NewMessage(NewID(), PongAnswer(req.TransactionID))
	pong.Metadata.Set(TransactionIDMetadataKey, req.Key())
	return []*message.Message{pong}, nil
}

func (h PingPong) maxRequestBytes() int {
	if h.MaxRequestBytes == 0 {
		return DefaultMaxRequestBytes
	}
	return h.MaxRequestBytes
}
