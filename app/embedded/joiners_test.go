package embedded_test

import (
	"context"
	"fmt"
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
	brokers := keptAliveCluster(t, partitions, topic).ListenAddrs()
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
	join := joinRequest(group, topic, 6*time.Second, 20*time.Second)
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

// joinRequest is a new member's JoinGroup of group, for topic, as franz-go's cooperative-sticky
// consumer sends it.
func joinRequest(group, topic string, session, rebalance time.Duration) *kmsg.JoinGroupRequest {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = []string{topic}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = group, "consumer"
	join.SessionTimeoutMillis = int32(session.Milliseconds())
	join.RebalanceTimeoutMillis = int32(rebalance.Milliseconds())
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: meta.AppendTo(nil)}}
	return join
}

// keptAliveCluster is a broker with the embedded broker's listener and KeepJoinersAlive, and topic
// of partitions partitions, closed when the test ends.
func keptAliveCluster(t *testing.T, partitions int32, topic string) *kfake.Cluster {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic), kfake.ListenFn(embedded.Listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	stop, err := embedded.KeepJoinersAlive(cluster)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return cluster
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

// A member whose SyncGroup waits for a leader that died after the join phase stays in the group,
// and is answered REBALANCE_IN_PROGRESS when the leader's session expires, as on Kafka. kfake
// let the waiting member's session expire first (here it is the shorter one) and dropped it
// without an answer: its SyncGroup hung until its client gave up on it (60 s for the service).
func TestSyncGroupWaitingForADeadLeaderIsAnswered(t *testing.T) {
	t.Parallel()
	const topic, group = "syncs", "leaderless"
	brokers := keptAliveCluster(t, 1, topic).ListenAddrs()
	ctx := context.Background()
	newMember := func(session time.Duration) *rawMember {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return &rawMember{t: t, cl: cl, group: group, topic: topic, session: session}
	}

	leader := newMember(9 * time.Second)
	if gen := leader.mustJoin(ctx); leader.sync(ctx, gen, true) != 0 {
		t.Fatal("the leader's first SyncGroup failed")
	}
	follower := newMember(6 * time.Second) // kfake's shortest
	type joined struct {
		generation int32
		err        error
	}
	followerJoined := make(chan joined, 1)
	go func() { // held until the leader rejoins
		gen, err := follower.join(ctx)
		followerJoined <- joined{gen, err}
	}()
	time.Sleep(500 * time.Millisecond)
	leader.mustJoin(ctx) // and then the leader dies: it never sends its SyncGroup, nor a heartbeat
	j := <-followerJoined
	if j.err != nil {
		t.Fatal(j.err)
	}
	gen := j.generation

	start := time.Now()
	code := follower.sync(ctx, gen, false)
	if code != kerr.RebalanceInProgress.Code {
		t.Fatalf("the follower's SyncGroup: %v after %s, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code), time.Since(start).Round(time.Millisecond))
	}
	t.Logf("the follower's SyncGroup was answered %s after it was sent (the sessions: the leader's 9 s, the follower's 6 s)", time.Since(start).Round(time.Millisecond))
	if gen := follower.mustJoin(ctx); follower.sync(ctx, gen, true) != 0 {
		t.Fatal("the follower could not lead the group once the leader had gone")
	}
}

// rawMember is a group member speaking the classic protocol's requests itself, so that a test can
// stop it between any two of them.
type rawMember struct {
	t            *testing.T
	cl           *kgo.Client
	group, topic string
	session      time.Duration
	id           string
}

func (m *rawMember) mustJoin(ctx context.Context) int32 {
	gen, err := m.join(ctx)
	if err != nil {
		m.t.Fatal(err)
	}
	return gen
}

// join joins the group (asking for a member id first) and returns the generation.
func (m *rawMember) join(ctx context.Context) (int32, error) {
	req := joinRequest(m.group, m.topic, m.session, 20*time.Second)
	req.MemberID = m.id
	for {
		resp, err := req.RequestWith(ctx, m.cl)
		if err != nil {
			return 0, err
		}
		if resp.ErrorCode == kerr.MemberIDRequired.Code {
			req.MemberID, m.id = resp.MemberID, resp.MemberID
			continue
		}
		if resp.ErrorCode != 0 {
			return 0, fmt.Errorf("JoinGroup: %w", kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp.Generation, nil
	}
}

// sync sends the member's SyncGroup of generation, with an assignment of nothing to each member
// when it leads, and returns the error code of the answer (a 25 s wait at most).
func (m *rawMember) sync(ctx context.Context, generation int32, lead bool) int16 {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = m.group, m.id, generation
	if lead {
		req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: m.id, MemberAssignment: []byte{}}}
	}
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		m.t.Fatalf("SyncGroup: %v", err)
	}
	return resp.ErrorCode
}
