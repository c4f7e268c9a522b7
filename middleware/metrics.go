package middleware

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/poison"
)

// Metrics are the service's own metrics, next to Watermill's (handler execution time, publish
// time, messages received). docs/monitoring.md says what each is for.
type Metrics struct {
	Requests *prometheus.CounterVec // pingpong_requests_total{outcome}
	Poisoned *prometheus.CounterVec // pingpong_poisoned_total{reason}
	Retries  prometheus.Counter     // pingpong_retries_total
	Panics   prometheus.Counter     // pingpong_panics_total
	Nacks    prometheus.Counter     // pingpong_nacks_total
	InFlight prometheus.Gauge       // pingpong_messages_in_flight
	Duration prometheus.Histogram   // pingpong_processing_duration_seconds
	EndToEnd prometheus.Histogram   // pingpong_end_to_end_latency_seconds
}

// NewMetrics registers the metrics with reg. Every label value is created up front, so that each
// series exists (at 0) from the first scrape and rate() and alerts work before the first failure.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pingpong_requests_total",
			Help: "Requests answered, by outcome: pong, not_ping, malformed, error.",
		}, []string{"outcome"}),
		Poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pingpong_poisoned_total",
			Help: "Records published to the poison queue (.failed), by reason code.",
		}, []string{"reason"}),
		Retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pingpong_retries_total",
			Help: "Handler runs repeated after a transient failure.",
		}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pingpong_panics_total",
			Help: "Handler panics recovered (each poisoned its request).",
		}),
		Nacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pingpong_nacks_total",
			Help: "Requests handed back for redelivery because neither an answer nor a poison record could be published.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pingpong_messages_in_flight",
			Help: "Requests being handled now.",
		}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pingpong_processing_duration_seconds",
			Help:    "Time from a request entering the handler chain to its answer being acknowledged.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		EndToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pingpong_end_to_end_latency_seconds",
			Help:    "Time from a request's record timestamp to its answer being acknowledged.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	reg.MustRegister(m.Requests, m.Poisoned, m.Retries, m.Panics, m.Nacks, m.InFlight, m.Duration, m.EndToEnd)
	for _, o := range []handlers.Outcome{handlers.OutcomePong, handlers.OutcomeNotPing, handlers.OutcomeMalformed, handlers.OutcomeError} {
		m.Requests.WithLabelValues(string(o))
	}
	for _, code := range poison.ReasonCodes {
		m.Poisoned.WithLabelValues(string(code))
	}
	return m
}
