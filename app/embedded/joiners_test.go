package embedded_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/embedded"
)

// A member whose JoinGroup waits longer than its session timeout, because another member is
// slow to rejoin, stays in the group and is answered when the rebalance completes, as on Kafka.
// kfake dropped it without an answer: its client learned it only when the JoinGroup timed out
// (here 30 s), holding its partitions until then.
func TestJoinGroupWaitingLongerThanTheSessionIsAnswered(t *testing.T) {
	t.Parallel()
	const topic, group, partitions = "joins", "slow", 4
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic), kfake.ListenFn(embedded.Listen))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	stop, err := embedded.KeepJoinersAlive(cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	brokers := cluster.ListenAddrs()
	ctx := context.Background()

	owned := &ownedPartitions{}
	live, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond), kgo.RebalanceTimeout(20*time.Second),
		owned.assigned(topic), owned.revoked(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() {
		for !live.PollFetches(ctx).IsClientClosed() {
		}
	}()
	ownsAll := func() bool { return owned.count() == partitions }
	if !eventually(20*time.Second, ownsAll) {
		t.Fatal("the live consumer never got the partitions")
	}

	// A slow member: it joins, then heartbeats without rejoining the next rebalance, as a
	// member busy revoking its partitions does, for longer than the live member's session.
	slow, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = []string{topic}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = group
	join.SessionTimeoutMillis = 6000
	join.RebalanceTimeoutMillis = 20000
	join.ProtocolType = "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: meta.AppendTo(nil)}}
	joined, err := join.RequestWith(ctx, slow)
	if err != nil || joined.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first JoinGroup: %v %v", err, joined)
	}
	join.MemberID = joined.MemberID
	if joined, err = join.RequestWith(ctx, slow); err != nil || joined.ErrorCode != 0 {
		t.Fatalf("JoinGroup: %v %v", err, joined)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = group, join.MemberID, joined.Generation
	// REBALANCE_IN_PROGRESS when the live member has rejoined first: the slow one stays a member.
	if synced, err := sync.RequestWith(ctx, slow); err != nil || synced.ErrorCode != 0 && synced.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("SyncGroup: %v %v", err, synced)
	}
	// The live member hands over a share of its partitions and rejoins: the group waits for
	// the slow member, which only heartbeats, for twice the live member's session.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = group, join.MemberID, joined.Generation
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if _, err := hb.RequestWith(ctx, slow); err != nil {
			t.Fatal(err)
		}
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = group
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: join.MemberID}}
	if _, err := leave.RequestWith(ctx, slow); err != nil {
		t.Fatal(err)
	}
	if !eventually(8*time.Second, ownsAll) {
		t.Fatalf("8 s after the slow member left, the live consumer owns %d of the %d partitions", owned.count(), partitions)
	}
}

// ownedPartitions follows the partitions of topic a group member owns, from its rebalance
// callbacks.
type ownedPartitions struct {
	mu    sync.Mutex
	owned map[int32]bool
}

func (o *ownedPartitions) assigned(topic string) kgo.Opt {
	return kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.owned == nil {
			o.owned = map[int32]bool{}
		}
		for _, p := range m[topic] {
			o.owned[p] = true
		}
	})
}

func (o *ownedPartitions) revoked(topic string) kgo.Opt {
	return kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, p := range m[topic] {
			delete(o.owned, p)
		}
	})
}

func (o *ownedPartitions) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.owned)
}
