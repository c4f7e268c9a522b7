package middleware

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/handlers"
)

// Observe is the outermost middleware: it gives each message an Event and a correlation id, and
// when the chain returns it logs the event and records it in the metrics.
type Observe struct {
	Logger  *logrus.Entry
	Metrics *Metrics
	// Source tells where a message was read from; nil leaves the Event's Source empty.
	Source SourceFunc
}

// Middleware is the Watermill middleware.
func (o Observe) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		start := time.Now()
		ev := EventFrom(msg)
		if o.Source != nil {
			ev.Source = o.Source(msg)
		}
		// Requests from other teams rarely carry one; answers and logs need one to be followed.
		wmmiddleware.SetCorrelationID(watermill.NewShortUUID(), msg)
		ev.CorrelationID = wmmiddleware.MessageCorrelationID(msg)

		o.Metrics.InFlight.Inc()
		answers, err := h(msg)
		o.Metrics.InFlight.Dec()
		o.record(msg, ev, start, err)
		return answers, err
	}
}

func (o Observe) record(msg *message.Message, ev *Event, start time.Time, err error) {
	m := o.Metrics
	m.Duration.Observe(time.Since(start).Seconds())
	if ev.Attempts > 1 {
		m.Retries.Add(float64(ev.Attempts - 1))
	}
	log := o.Logger.WithFields(logrus.Fields{
		"transaction_id": ev.TransactionID,
		"correlation_id": ev.CorrelationID,
		"topic":          ev.Source.Topic,
		"partition":      ev.Source.Partition,
		"offset":         ev.Source.Offset,
	})
	if ev.Attempts > 1 {
		log = log.WithField("attempts", ev.Attempts)
	}
	if o.Logger.Logger.IsLevelEnabled(logrus.DebugLevel) {
		log = log.WithField("payload", string(msg.Payload))
	}

	if err != nil {
		m.Nacks.Inc()
		log.WithError(err).Error("Could not answer the request; it stays uncommitted and will be redelivered")
		return
	}
	outcome := handlers.OutcomePong
	if ev.Poisoned {
		m.Poisoned.WithLabelValues(string(ev.ReasonCode)).Inc()
		outcome = outcomeOf(ev.ReasonCode)
		log = log.WithFields(logrus.Fields{"reason_code": ev.ReasonCode, "reason": ev.Reason})
	}
	m.Requests.WithLabelValues(string(outcome)).Inc()
	if !ev.Source.Timestamp.IsZero() {
		m.EndToEnd.Observe(time.Since(ev.Source.Timestamp).Seconds())
	}

	switch ev.ReasonCode {
	case "":
		if ev.Attempts > 1 {
			log.Warn("Answered pong after retrying a transient failure")
		} else {
			log.Debug("Answered pong")
		}
	case ReasonNotPing, ReasonMalformed:
		log.Info("Rejected the request; answered on the poison queue")
	case ReasonPanic:
		m.Panics.Inc()
		log.WithError(ev.Err).Error("The handler panicked; the request was poisoned")
	default:
		log.WithError(ev.Err).Error("Processing failed for good; the request was poisoned")
	}
}

func outcomeOf(code ReasonCode) handlers.Outcome {
	switch code {
	case ReasonNotPing:
		return handlers.OutcomeNotPing
	case ReasonMalformed:
		return handlers.OutcomeMalformed
	default:
		return handlers.OutcomeError
	}
}
