package middleware

import (
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
)

// RouterMetrics records the three series of Watermill's Prometheus metrics builder
// (components/metrics) for one consumer handler, with the same names, help, labels and buckets,
// so that the dashboard and the alerts built on them read the same:
//
//	<namespace>_<subsystem>_handler_execution_time_seconds{handler_name, success}
//	<namespace>_<subsystem>_publish_time_seconds{handler_name, publisher_name, success}
//	<namespace>_<subsystem>_subscriber_messages_received_total{handler_name, subscriber_name, acked}
//
// Watermill's builder works out each series' labels from the message context for every message,
// and its subscriber decorator forwards every message through one more goroutine and channel and
// starts a goroutine per message that waits for the ack. With one handler the labels never
// change, so RouterMetrics resolves its series once, when it is built: in the drain benchmark the
// builder cost about a sixth of the service's throughput (docs/performance.md).
//
// Every series exists, at 0, from the start. Two differences, both deliberate: publisher_name is the publisher's own type name (Watermill's
// builder reads it from the handler context, where a consumer handler's publisher is
// "message.disabledPublisher"), and a message counts as acked or nacked when the handler returns,
// as the router settles a consumer handler's message, instead of when the subscriber sees it
// settled.
type RouterMetrics struct {
	handlerSucceeded, handlerFailed prometheus.Observer
	publishSucceeded, publishFailed prometheus.Observer
	acked, nacked                   prometheus.Counter
}

// Watermill's defaults: components/metrics uses these for handler execution time, and
// Prometheus's default buckets for publish time.
var (
	handlerExecutionTimeBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
	publishTimeBuckets          = prometheus.DefBuckets
)

// NewRouterMetrics registers the series of handler handlerName, which reads from sub and publishes
// with pub, under namespace_subsystem_ (Watermill's builder takes the same two names).
func NewRouterMetrics(reg prometheus.Registerer, namespace, subsystem, handlerName string, sub message.Subscriber, pub message.Publisher) (*RouterMetrics, error) {
	handlerTime := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace,
		Subsystem: subsystem,
		Name:      "handler_execution_time_seconds",
		Help:      "The total time elapsed while executing the handler function in seconds",
		Buckets:   handlerExecutionTimeBuckets,
	}, []string{"handler_name", "success"})
	publishTime := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace,
		Subsystem: subsystem,
		Name:      "publish_time_seconds",
		Help:      "The time that a publishing attempt (success or not) took in seconds",
		Buckets:   publishTimeBuckets,
	}, []string{"handler_name", "publisher_name", "success"})
	received := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Subsystem: subsystem,
		Name:      "subscriber_messages_received_total",
		Help:      "The total number of messages received by the subscriber",
	}, []string{"handler_name", "subscriber_name", "acked"})
	for _, c := range []prometheus.Collector{handlerTime, publishTime, received} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the router metrics: %w", err)
		}
	}
	subscriber, publisher := typeName(sub), typeName(pub)
	return &RouterMetrics{
		handlerSucceeded: handlerTime.WithLabelValues(handlerName, "true"),
		handlerFailed:    handlerTime.WithLabelValues(handlerName, "false"),
		publishSucceeded: publishTime.WithLabelValues(handlerName, publisher, "true"),
		publishFailed:    publishTime.WithLabelValues(handlerName, publisher, "false"),
		acked:            received.WithLabelValues(handlerName, subscriber, "acked"),
		nacked:           received.WithLabelValues(handlerName, subscriber, "nacked"),
	}, nil
}

// Middleware times the handler and counts its message as acked (the handler returned no error)
// or nacked (an error, or a panic, which the router recovers and nacks). Add it to the router
// before the other middleware, so that it times them too, as Watermill's does.
func (m *RouterMetrics) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (answers []*message.Message, err error) {
		start := time.Now()
		returned := false
		defer func() {
			if returned && err == nil {
				m.handlerSucceeded.Observe(time.Since(start).Seconds())
				m.acked.Inc()
				return
			}
			m.handlerFailed.Observe(time.Since(start).Seconds())
			m.nacked.Inc()
		}()
		answers, err = h(msg)
		returned = true
		return answers, err
	}
}

// DecoratePublisher times every Publish call of pub.
func (m *RouterMetrics) DecoratePublisher(pub message.Publisher) message.Publisher {
	return timedPublisher{Publisher: pub, metrics: m}
}

type timedPublisher struct {
	message.Publisher
	metrics *RouterMetrics
}

func (p timedPublisher) Publish(topic string, msgs ...*message.Message) error {
	start := time.Now()
	err := p.Publisher.Publish(topic, msgs...)
	if err != nil {
		p.metrics.publishFailed.Observe(time.Since(start).Seconds())
	} else {
		p.metrics.publishSucceeded.Observe(time.Since(start).Seconds())
	}
	return err
}

// typeName names a publisher or subscriber as Watermill's builder does: its String method, or
// its type without the pointer star ("transport.FranzSubscriber", "kafka.Subscriber").
func typeName(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.TrimLeft(fmt.Sprintf("%T", v), "*")
}
