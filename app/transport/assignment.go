package transport

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Assignment makes the consumer group's rebalances visible in the metrics:
//
//	pingpong_partitions_assigned  gauge: partitions of the input topic this instance consumes now
//	pingpong_rebalances_total     counter: rebalances that changed this instance's partitions
//	                              (once per group generation; joining the group is the first)
//
// A transport calls Assigned and Revoked from its consumer group's hooks, with the partitions
// that came or went: all of them with an eager protocol (watermill-kafka's Sarama consumer
// group), only the moved ones with a cooperative one (franz-go's cooperative-sticky balancer).
// Each transport logs the changes itself. A nil *Assignment does nothing.
type Assignment struct {
	partitions prometheus.Gauge
	rebalances prometheus.Counter
	joined     prometheus.Gauge
	inGroup    bool
	topic      topicReadiness // whether the requested topic can be read (topicwatch.go)

	mu         sync.Mutex
	owned      map[string]map[int32]bool
	generation int32
	counted    bool
}

// NewAssignment registers the metrics with reg.
func NewAssignment(reg prometheus.Registerer) *Assignment {
	a := &Assignment{
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pingpong_partitions_assigned",
			Help: "Partitions of the input topic this instance consumes now.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pingpong_rebalances_total",
			Help: "Consumer group rebalances that changed this instance's partitions (once per generation).",
		}),
		joined: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pingpong_group_joined",
			Help: "1 once this instance has joined its consumer group (even with no partitions), 0 before, and while it fails to take part in the group.",
		}),
		owned: map[string]map[int32]bool{},
	}
	reg.MustRegister(a.partitions, a.rebalances, a.joined)
	return a
}

// Joined tells whether the instance takes part in its consumer group: it joined it, and has not
// failed to stay in it since. An instance that cannot join (a group of the other transport, an
// ACL) answers nothing however healthy it is otherwise.
func (a *Assignment) Joined() bool {
	if a == nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inGroup
}

// GroupFailed records that the instance fell out of its group or failed to join it; the next
// assignment records it back in.
func (a *Assignment) GroupFailed() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inGroup = false
	a.joined.Set(0)
}

// Assigned records partitions the group gave this instance in generation.
func (a *Assignment) Assigned(generation int32, partitions map[string][]int32) {
	a.change(generation, partitions, true)
	if a != nil {
		a.mu.Lock()
		a.inGroup = true
		a.joined.Set(1)
		a.mu.Unlock()
	}
}

// Revoked records partitions the group took back (revoked, or lost) in generation.
func (a *Assignment) Revoked(generation int32, partitions map[string][]int32) {
	a.change(generation, partitions, false)
}

func (a *Assignment) change(generation int32, partitions map[string][]int32, add bool) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	changed := false
	for topic, ps := range partitions {
		if a.owned[topic] == nil {
			a.owned[topic] = map[int32]bool{}
		}
		for _, p := range ps {
			changed = changed || a.owned[topic][p] != add
			if add {
				a.owned[topic][p] = true
			} else {
				delete(a.owned[topic], p)
			}
		}
	}
	n := 0
	for _, ps := range a.owned {
		n += len(ps)
	}
	a.partitions.Set(float64(n))
	if changed && (!a.counted || generation != a.generation) {
		a.rebalances.Inc()
		a.generation, a.counted = generation, true
	}
}
