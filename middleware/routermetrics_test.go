package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pingpong/pingpong/middleware"
)

// The same traffic through a real Watermill router, once with Watermill's metrics builder and
// once with RouterMetrics, must give the same series: names, help, types, labels, buckets and
// counts. Only publisher_name differs, on purpose (RouterMetrics says why).
func TestRouterMetricsRecordWhatWatermillsBuilderRecords(t *testing.T) {
	watermills, _ := routeTraffic(t, func(reg *prometheus.Registry, router *message.Router, sub message.Subscriber, pub message.Publisher) message.Publisher {
		builder := metrics.NewPrometheusMetricsBuilder(reg, "pingpong", "watermill")
		builder.AddPrometheusRouterMetrics(router)
		decorated, err := builder.DecoratePublisher(pub)
		if err != nil {
			t.Fatal(err)
		}
		return decorated
	})
	ours, ourRegistry := routeTraffic(t, func(reg *prometheus.Registry, router *message.Router, sub message.Subscriber, pub message.Publisher) message.Publisher {
		m, err := middleware.NewRouterMetrics(reg, "pingpong", "watermill", "answer", sub, pub)
		if err != nil {
			t.Fatal(err)
		}
		router.AddMiddleware(m.Middleware)
		return m.DecoratePublisher(pub)
	})
	publisherNames := labelValues(t, ourRegistry, "publisher_name")

	if len(ours) == 0 {
		t.Fatal("RouterMetrics recorded nothing")
	}
	for name, want := range watermills {
		got, ok := ours[name]
		if !ok {
			t.Errorf("series %s is missing", name)
			continue
		}
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	for name := range ours {
		if _, ok := watermills[name]; !ok {
			t.Errorf("series %s is not one of Watermill's", name)
		}
	}
	// The publisher is named for what it is, not for the router's placeholder.
	if len(publisherNames) == 0 {
		t.Error("no series has a publisher_name")
	}
	for _, name := range publisherNames {
		if name != "failingPublisher" {
			t.Errorf("publisher_name is %q, want the publisher's own name, failingPublisher", name)
		}
	}
}

// failingPublisher fails every publish to the topic "unwritable".
type failingPublisher struct{ message.Publisher }

func (p failingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == "unwritable" {
		return errors.New("broker unavailable")
	}
	return p.Publisher.Publish(topic, msgs...)
}

func (p failingPublisher) String() string { return "failingPublisher" }

// routeTraffic sends ten messages through a router with one consumer handler, "answer", that
// publishes each with the decorated publisher: seven succeed, two fail on their first run (so
// are nacked once, then acked) and one cannot be published the first time. It returns the
// gathered series, keyed by name and labels (publisher_name blanked), each with its help, type,
// buckets and count, and the registry.
func routeTraffic(t *testing.T, instrument func(*prometheus.Registry, *message.Router, message.Subscriber, message.Publisher) message.Publisher) (map[string]string, *prometheus.Registry) {
	t.Helper()
	logger := watermill.NopLogger{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	pub := instrument(reg, router, pubSub, failingPublisher{pubSub})

	var mu sync.Mutex
	runs := map[string]int{}
	acked := make(chan struct{}, 100)
	router.AddConsumerHandler("answer", "requests", pubSub, func(msg *message.Message) error {
		mu.Lock()
		runs[msg.UUID]++
		first := runs[msg.UUID] == 1
		mu.Unlock()
		topic := "answers"
		switch {
		case first && string(msg.Payload) == "fails once":
			return errors.New("transient")
		case first && string(msg.Payload) == "unwritable once":
			topic = "unwritable"
		}
		answer := message.NewMessage(watermill.NewUUID(), msg.Payload)
		answer.SetContext(msg.Context()) // as PublishAnswers does: the answer carries the handler's context
		if err := pub.Publish(topic, answer); err != nil {
			return err
		}
		acked <- struct{}{}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	<-router.Running()

	payloads := []string{"ok", "ok", "fails once", "ok", "unwritable once", "ok", "ok", "fails once", "ok", "ok"}
	for _, p := range payloads {
		if err := pubSub.Publish("requests", message.NewMessage(watermill.NewUUID(), []byte(p))); err != nil {
			t.Fatal(err)
		}
	}
	for range payloads {
		select {
		case <-acked:
		case <-time.After(10 * time.Second):
			t.Fatal("the router did not handle every message")
		}
	}
	// Watermill's subscriber decorator counts in a goroutine per message: wait for it.
	var series map[string]string
	deadline := time.Now().Add(10 * time.Second)
	for {
		series = gather(t, reg)
		if series[`pingpong_watermill_subscriber_messages_received_total{acked="acked",handler_name="answer",subscriber_name="gochannel.GoChannel"}`] == "counter The total number of messages received by the subscriber: 10" ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return series, reg
}

// labelValues lists the values label takes in reg's series.
func labelValues(t *testing.T, reg *prometheus.Registry, label string) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					values = append(values, l.GetValue())
				}
			}
		}
	}
	return values
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]string{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				value := l.GetValue()
				if l.GetName() == "publisher_name" {
					value = "…"
				}
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), value))
			}
			sort.Strings(labels)
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			series[key] = describe(f, m)
		}
	}
	return series
}

func describe(f *dto.MetricFamily, m *dto.Metric) string {
	head := strings.ToLower(f.GetType().String()) + " " + f.GetHelp() + ": "
	if h := m.GetHistogram(); h != nil {
		var bounds []string
		for _, b := range h.GetBucket() {
			bounds = append(bounds, fmt.Sprint(b.GetUpperBound()))
		}
		return head + fmt.Sprintf("%d observations, buckets %s", h.GetSampleCount(), strings.Join(bounds, " "))
	}
	return head + fmt.Sprint(m.GetCounter().GetValue())
}
