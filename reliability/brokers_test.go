package reliability_test

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pingpong/pingpong/app/servicetest"
)

// The scenarios send requests from an independent client while the fault happens: a steady load
// of chunk requests every interval (1,000 a second), which the service keeps up with. The cluster
// scenarios also start with a backlog, so that the fault meets requests in flight.
const (
	partitions = 4
	chunk      = 100
	interval   = 100 * time.Millisecond
	backlog    = 4000
	steady     = 2000
	// outageAfterNotice is how long a cluster stays down once the service has noticed.
	outageAfterNotice = 3 * time.Second
)

// backlogThenLoad sends a backlog of requests, then a steady load.
func backlogThenLoad(t *testing.T, brokers []string, run string) *load {
	t.Helper()
	return startLoad(t, brokers, servicetest.Mix(run, backlog+steady, partitions), backlog, chunk, interval)
}

func threeBrokers(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	return servicetest.Cluster(t, partitions, append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
}

// TestLeadersShuffledAndABrokerRemoved moves every partition's leader, then takes a broker out
// of the cluster, while requests keep coming.
func TestLeadersShuffledAndABrokerRemoved(t *testing.T) {
	cluster := threeBrokers(t)
	brokers := cluster.ListenAddrs()
	svc := servicetest.Start(t, serviceConfig(t, brokers))
	reader := servicetest.NewReader(t, brokers)

	start := time.Now()
	ld := backlogThenLoad(t, brokers, "shuffle")
	waitFor(t, 30*time.Second, "a quarter of the load answered", func() bool { return handled(t, svc) >= backlog/4 })
	cluster.ShufflePartitionLeaders()
	waitFor(t, 30*time.Second, "half of the load answered", func() bool { return handled(t, svc) >= backlog/2 })
	removed := cluster.LeaderFor(servicetest.Topics.Requested, 0)
	if err := cluster.RemoveNode(removed); err != nil {
		t.Fatal(err)
	}
	reqs := ld.finish(t, time.Minute)
	tally, exhausted := collect(t, reader, reqs)
	figures{scenario: "partition leaders shuffled, then broker " + strconv.Itoa(int(removed)) + " of 3 removed",
		fault: "leader election; broker loss", tally: tally, exhausted: exhausted, elapsed: time.Since(start), felt: []*servicetest.Running{svc}}.report(t)
}

// TestGroupCoordinatorMoved moves the consumer group's coordinator to another broker while
// requests keep coming: the service must find the new one to commit its offsets and heartbeat.
func TestGroupCoordinatorMoved(t *testing.T) {
	cluster := threeBrokers(t)
	brokers := cluster.ListenAddrs()
	cfg := serviceConfig(t, brokers)
	svc := servicetest.Start(t, cfg)
	reader := servicetest.NewReader(t, brokers)

	start := time.Now()
	ld := backlogThenLoad(t, brokers, "coordinator")
	waitFor(t, 30*time.Second, "a quarter of the load answered", func() bool { return handled(t, svc) >= backlog/4 })
	from := cluster.CoordinatorFor(cfg.ConsumerGroup)
	for i := 0; cluster.CoordinatorFor(cfg.ConsumerGroup) == from; i++ {
		if i == 100 {
			t.Fatalf("the coordinator stays on broker %d", from)
		}
		cluster.RehashCoordinators()
	}
	to := cluster.CoordinatorFor(cfg.ConsumerGroup)
	reqs := ld.finish(t, time.Minute)
	tally, exhausted := collect(t, reader, reqs)
	figures{scenario: "group coordinator moved from broker " + strconv.Itoa(int(from)) + " to " + strconv.Itoa(int(to)),
		fault: "coordinator change", tally: tally, exhausted: exhausted, elapsed: time.Since(start), felt: []*servicetest.Running{svc}}.report(t)
}

// TestClusterStoppedAndRestartedFromItsDataDir stops every broker in the middle of a load, keeps
// them down for a few seconds once the service has noticed (it says it is not ready, and stays
// up), and starts them again on the same ports from their data directory, as a cluster restarted
// after an outage.
func TestClusterStoppedAndRestartedFromItsDataDir(t *testing.T) {
	dir := t.TempDir()
	cluster := threeBrokers(t, kfake.DataDir(dir))
	brokers := cluster.ListenAddrs()
	ports := make([]int, len(brokers))
	for i, addr := range brokers {
		_, port, _ := net.SplitHostPort(addr)
		ports[i], _ = strconv.Atoi(port)
	}
	svc := servicetest.Start(t, serviceConfig(t, brokers))
	base := "http://" + svc.HTTPAddr()
	waitFor(t, 10*time.Second, "ready", func() bool { return httpStatus(base+"/readyz") == http.StatusOK })
	reader := servicetest.NewReader(t, brokers)

	start := time.Now()
	ld := backlogThenLoad(t, brokers, "restart")
	waitFor(t, 30*time.Second, "a quarter of the load answered", func() bool { return handled(t, svc) >= backlog/4 })
	cluster.Close()
	down := time.Now()
	waitFor(t, 30*time.Second, "/readyz to say not ready", func() bool { return httpStatus(base+"/readyz") == http.StatusServiceUnavailable })
	time.Sleep(outageAfterNotice) // the fault's length, not a wait for a result
	if code := httpStatus(base + "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d during the outage: the process must stay up", code)
	}

	outage := time.Since(down)
	restarted, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.Ports(ports...), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("restarting the cluster from %s: %v", dir, err)
	}
	t.Cleanup(restarted.Close)
	waitFor(t, 30*time.Second, "/readyz to say ready again", func() bool { return httpStatus(base+"/readyz") == http.StatusOK })
	reqs := ld.finish(t, time.Minute)
	tally, exhausted := collect(t, reader, reqs)
	figures{scenario: "all 3 brokers stopped for " + outage.Round(100*time.Millisecond).String() + ", restarted from their data dir",
		fault: "cluster outage", tally: tally, exhausted: exhausted, elapsed: time.Since(start), felt: []*servicetest.Running{svc}}.report(t)
}
