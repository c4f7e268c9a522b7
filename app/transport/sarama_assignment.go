package transport

import (
	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
)

// saramaAssignment reports watermill-kafka's consumer group sessions: a log line and the
// Assignment metrics. watermill-kafka offers no rebalance hooks of its own, but it lets a
// SaramaTracer wrap the consumer group handler it gives Sarama, and Sarama calls the handler's
// Setup when a session starts with a new assignment and Cleanup when it ends (a rebalance, or
// leaving the group). The other wrappers change nothing.
type saramaAssignment struct {
	a      *Assignment
	logger watermill.LoggerAdapter
}

var _ kafka.SaramaTracer = saramaAssignment{}

func (s saramaAssignment) WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler) sarama.ConsumerGroupHandler {
	return observedHandler{ConsumerGroupHandler: h, s: s}
}

func (saramaAssignment) WrapConsumer(c sarama.Consumer) sarama.Consumer { return c }

func (saramaAssignment) WrapPartitionConsumer(pc sarama.PartitionConsumer) sarama.PartitionConsumer {
	return pc
}

func (saramaAssignment) WrapSyncProducer(_ *sarama.Config, p sarama.SyncProducer) sarama.SyncProducer {
	return p
}

type observedHandler struct {
	sarama.ConsumerGroupHandler
	s saramaAssignment
}

func (h observedHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.s.a.Assigned(sess.GenerationID(), sess.Claims())
	h.s.logger.Info("Partitions assigned", watermill.LogFields{
		"member_id": sess.MemberID(), "generation": sess.GenerationID(), "partitions": sess.Claims(),
	})
	return h.ConsumerGroupHandler.Setup(sess)
}

func (h observedHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	err := h.ConsumerGroupHandler.Cleanup(sess)
	h.s.a.Revoked(sess.GenerationID(), sess.Claims())
	h.s.logger.Info("Partitions revoked", watermill.LogFields{
		"member_id": sess.MemberID(), "generation": sess.GenerationID(), "partitions": sess.Claims(),
	})
	return err
}
