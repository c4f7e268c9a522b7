package reliability_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/servicetest"
)

// TestInstancesJoinAndLeaveDuringLoad has a second and a third instance join the consumer group
// while requests keep coming, then leave again (a scale out and a scale in, or a rolling
// restart): each change is a rebalance, every instance's pingpong_partitions_assigned and
// pingpong_rebalances_total show it, and no request is lost. The load is 500 requests a second,
// for as long as the five assignments take.
func TestInstancesJoinAndLeaveDuringLoad(t *testing.T) {
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	// A configuration each: in exactly-once mode (RELIABILITY_DELIVERY) each has its own
	// transactional id.
	first := servicetest.Start(t, serviceConfig(t, brokers))
	assigned := func(svcs ...*servicetest.Running) []int {
		n := make([]int, len(svcs))
		for i, s := range svcs {
			n[i] = int(metric(t, s, "pingpong_partitions_assigned"))
		}
		return n
	}
	// shared waits for the group to settle with the partitions spread over every instance.
	shared := func(what string, svcs ...*servicetest.Running) {
		t.Helper()
		waitFor(t, 45*time.Second, what, func() bool {
			total := 0
			for _, n := range assigned(svcs...) {
				if n == 0 {
					return false
				}
				total += n
			}
			return total == partitions
		})
		t.Logf("%s: partitions assigned %v", what, assigned(svcs...))
	}
	shared("the first instance owns every partition", first)
	reader := servicetest.NewReader(t, brokers)

	start := time.Now()
	ld := startLoad(t, brokers, servicetest.Mix("rebalance", 30_000, partitions), 0, chunk/2, interval)
	waitFor(t, 30*time.Second, "some of the load answered", func() bool { return handled(t, first) >= 500 })
	second := servicetest.Start(t, serviceConfig(t, brokers))
	shared("a second instance joined", first, second)
	third := servicetest.Start(t, serviceConfig(t, brokers))
	shared("a third instance joined", first, second, third)
	mid := handled(t, first, second, third)
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	shared("the second instance left", first, third)
	if err := third.Stop(); err != nil {
		t.Fatal(err)
	}
	shared("the third instance left", first)
	waitFor(t, 30*time.Second, "the first instance alone to answer more requests", func() bool { return handled(t, first) > mid })
	reqs := ld.stop(t)

	tally, exhausted := collect(t, reader, reqs)
	rebalances := []int{int(metric(t, first, "pingpong_rebalances_total")), int(metric(t, second, "pingpong_rebalances_total")), int(metric(t, third, "pingpong_rebalances_total"))}
	figures{scenario: fmt.Sprintf("2nd and 3rd instance join, then leave (rebalances seen by each: %v)", rebalances),
		fault: "4 rebalances", tally: tally, exhausted: exhausted, elapsed: time.Since(start), felt: []*servicetest.Running{first, second, third}}.report(t)
	// The first instance's partitions changed when it joined, when the second joined (it gave
	// half away) and when the others left (it took them back); with a cooperative protocol the
	// third one's arrival may leave it as it was.
	if rebalances[0] < 3 || rebalances[1] < 1 || rebalances[2] < 1 {
		t.Errorf("rebalances counted %v: want at least 3 for the first instance and 1 for the others", rebalances)
	}
	if n := handled(t, second) + handled(t, third); n == 0 {
		t.Error("the instances that joined answered nothing: the load was not shared")
	}
}
