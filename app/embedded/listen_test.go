package embedded_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/embedded"
)

// A client that dies while its JoinGroup waits for the rebalance must not stay in the group:
// the live member gets every partition once the dead one's session has expired. kfake left
// the dead member in the group for ever when the JoinGroup's answer found its connection closed,
// which happened about every other time (a select between the closed connection and room in the
// answer queue); eight groups make the old behaviour show at once.
func TestClientDyingInJoinGroupLeavesTheGroup(t *testing.T) {
	t.Parallel()
	const topic, partitions, groups = "joins", 4, 8
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic), kfake.ListenFn(embedded.Listen))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)

	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for i := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := joinAndDie(adm, brokers, fmt.Sprintf("group-%d", i), topic, partitions); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// joinAndDie runs a live consumer in group, then a second client that sends its JoinGroup and
// closes its connection before the rebalance answers it, and waits until the live consumer is
// the group's only member and owns every partition.
func joinAndDie(adm *kadm.Client, brokers []string, group, topic string, partitions int) error {
	ctx := context.Background()
	owned := &ownedPartitions{}
	live, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// Longer than the dead member's session: kfake also drops a member whose JoinGroup
		// waits longer than its session (and never answers it), which this test is not about.
		// Heartbeats 2 s apart leave the second client's JoinGroup waiting when it dies.
		kgo.SessionTimeout(30*time.Second), kgo.HeartbeatInterval(2*time.Second),
		owned.assigned(topic), owned.revoked(topic))
	if err != nil {
		return err
	}
	defer live.Close()
	go func() {
		for !live.PollFetches(ctx).IsClientClosed() {
		}
	}()
	members := func() ([]string, string) {
		d, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return nil, err.Error()
		}
		var ids []string
		for _, m := range d[group].Members {
			ids = append(ids, m.MemberID)
		}
		return ids, d[group].State
	}
	ownsAll := func() bool { return owned.count() == partitions }
	if !eventually(20*time.Second, ownsAll) {
		return fmt.Errorf("%s: the live consumer never got the partitions", group)
	}
	liveIDs, _ := members()

	dying, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	join := joinRequest(group, topic, 6*time.Second, 60*time.Second)
	resp, err := join.RequestWith(ctx, dying)
	if err != nil {
		return err
	}
	if resp.ErrorCode != kerr.MemberIDRequired.Code {
		return fmt.Errorf("%s: first JoinGroup: %v", group, kerr.ErrorForCode(resp.ErrorCode))
	}
	join.MemberID = resp.MemberID
	go join.RequestWith(ctx, dying) //nolint:errcheck // answered, if at all, after the client is gone
	joined := func() bool {
		ids, _ := members()
		return slices.Contains(ids, join.MemberID)
	}
	if !eventually(5*time.Second, joined) {
		return fmt.Errorf("%s: the second client's JoinGroup did not make it a member", group)
	}
	dying.Close()

	ok := eventually(30*time.Second, func() bool {
		ids, state := members()
		return state == "Stable" && len(ids) == 1 && ids[0] == liveIDs[0] && ownsAll()
	})
	if !ok {
		ids, state := members()
		return fmt.Errorf("%s: 30 s after the client died in its JoinGroup the group is %s with members %v (the live one is %v)", group, state, ids, liveIDs)
	}
	return nil
}

func eventually(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
