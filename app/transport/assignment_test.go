package transport_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pingpong/pingpong/app/transport"
)

func expect(t *testing.T, reg *prometheus.Registry, when string, partitions, rebalances int) {
	t.Helper()
	want := `
# HELP pingpong_partitions_assigned Partitions of the input topic this instance consumes now.
# TYPE pingpong_partitions_assigned gauge
pingpong_partitions_assigned ` + itoa(partitions) + `
# HELP pingpong_rebalances_total Consumer group rebalances that changed this instance's partitions (once per generation).
# TYPE pingpong_rebalances_total counter
pingpong_rebalances_total ` + itoa(rebalances) + `
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pingpong_partitions_assigned", "pingpong_rebalances_total"); err != nil {
		t.Errorf("%s: %v", when, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestAssignmentFollowsEagerAndCooperativeRebalances: an eager protocol revokes everything and
// assigns anew; a cooperative one moves only some partitions, in two generations. Both keep the
// gauge right and count one rebalance per generation that changed the assignment.
func TestAssignmentFollowsEagerAndCooperativeRebalances(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := transport.NewAssignment(reg)
	expect(t, reg, "before joining", 0, 0)

	a.Assigned(1, map[string][]int32{"t": {0, 1, 2, 3}})
	expect(t, reg, "joined", 4, 1)

	// Eager: everything revoked in generation 1, half of it assigned in generation 2.
	a.Revoked(1, map[string][]int32{"t": {0, 1, 2, 3}})
	expect(t, reg, "revoked", 0, 1)
	a.Assigned(2, map[string][]int32{"t": {0, 1}})
	expect(t, reg, "eager rebalance", 2, 2)

	// Cooperative: one partition revoked in generation 3, nothing new in generation 4.
	a.Revoked(3, map[string][]int32{"t": {1}})
	expect(t, reg, "cooperative revoke", 1, 3)
	a.Assigned(4, map[string][]int32{"t": {}})
	expect(t, reg, "a rebalance that changed nothing here", 1, 3)
	a.Assigned(5, map[string][]int32{"t": {2, 3}})
	expect(t, reg, "cooperative assignment", 3, 4)

	var none *transport.Assignment
	none.Assigned(6, map[string][]int32{"t": {9}}) // a nil Assignment does nothing
}

// An instance is in its group once it has been assigned partitions, even none, and out of it
// from a failure to take part until the next assignment.
func TestJoinedFollowsTheGroupSession(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := transport.NewAssignment(reg)
	joined := func() float64 { return testutil.ToFloat64(collectorNamed(t, reg, "pingpong_group_joined")) }
	if a.Joined() || joined() != 0 {
		t.Fatal("in the group before joining it")
	}
	a.Assigned(1, map[string][]int32{"t": {}})
	if !a.Joined() || joined() != 1 {
		t.Fatal("not in the group after an assignment of no partitions")
	}
	a.GroupFailed()
	if a.Joined() || joined() != 0 {
		t.Fatal("still in the group after failing to take part in it")
	}
	a.Assigned(2, map[string][]int32{"t": {0}})
	if !a.Joined() {
		t.Fatal("not back in the group after the next assignment")
	}
}

// collectorNamed is the registered gauge of that name, as a collector for testutil.
func collectorNamed(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			value := f.GetMetric()[0].GetGauge().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "copy"}, func() float64 { return value })
		}
	}
	t.Fatalf("no gauge %s", name)
	return nil
}
