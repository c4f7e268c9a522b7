package middleware

import (
	"sort"
	"sync/atomic"
	"time"

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

	// The trace id exemplars of Duration and EndToEnd, at most one a bucket a second.
	durationExemplars, endToEndExemplars *exemplarLimiter
}

var (
	durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	endToEndBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
)

// exemplarLimiter lets through at most one exemplar a histogram bucket a second. Prometheus
// keeps a bucket's latest exemplar only, read once a scrape; making one (labels checked, a
// timestamp, a protobuf message) cost 7% of a sampled request's tracing (BenchmarkChainTraced).
// A rare, slow bucket still gets the exemplar of its first request.
type exemplarLimiter struct {
	upper []float64      // the buckets' upper bounds
	last  []atomic.Int64 // when each bucket (and +Inf, last) last took one, in Unix nanoseconds
}

func newExemplarLimiter(buckets []float64) *exemplarLimiter {
	return &exemplarLimiter{upper: buckets, last: make([]atomic.Int64, len(buckets)+1)}
}

// allow tells whether an observation of v may carry an exemplar now, and if so counts it.
func (l *exemplarLimiter) allow(v float64, now time.Time) bool {
	bucket := &l.last[sort.SearchFloat64s(l.upper, v)] // the first bound >= v: its le bucket
	last, t := bucket.Load(), now.UnixNano()
	return t-last >= int64(time.Second) && bucket.CompareAndSwap(last, t)
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
			Buckets: durationBuckets,
		}),
		EndToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pingpong_end_to_end_latency_seconds",
			Help:    "Time from a request's record timestamp to its answer being acknowledged.",
			Buckets: endToEndBuckets,
		}),
		durationExemplars: newExemplarLimiter(durationBuckets),
		endToEndExemplars: newExemplarLimiter(endToEndBuckets),
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
