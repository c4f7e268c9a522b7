package embedded

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KeepJoinersAlive heartbeats every second for each group member whose JoinGroup or SyncGroup c
// is holding while the group rebalances, until c answers it, and returns a function that stops.
// Kafka keeps a member that waits in a JoinGroup or a SyncGroup in the group; kfake lets its
// session expire (a client sends no heartbeat while it waits) and drops it without answering:
// the client learns it only when its request times out (the rebalance timeout and franz-go's
// 10 s, 70 s for the service) and, with cooperative rebalancing, goes on answering its
// partitions all that time while the group gives them to another member. A SyncGroup waits
// for the leader's, so a leader that dies after the join phase left the other members to
// expire beside it. docs/reliability.md has the whole story.
func KeepJoinersAlive(c *kfake.Cluster) (stop func(), err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return nil, err
	}
	j := &joiners{waiting: map[member]wait{}, generation: map[string]int32{}, synced: map[string]int32{},
		rebalanceTimeout: map[member]time.Duration{}, ours: map[member]bool{}}
	for _, key := range []int16{kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16(), kmsg.Heartbeat.Int16(), kmsg.LeaveGroup.Int16()} {
		c.ControlKey(key, j.see)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			j.heartbeat(ctx, cl)
		}
	}()
	return func() { cancel(); <-done; cl.Close() }, nil
}

type member struct{ group, id string }

// wait is a member's JoinGroup or SyncGroup: the generation to heartbeat at (the group's when a
// JoinGroup was sent, the SyncGroup's own), and until when to keep the member alive (its
// rebalance timeout, after which Kafka ends the join or sync phase too).
type wait struct {
	generation int32
	until      time.Time
	sync       bool // a SyncGroup, which kfake answers when the leader's comes
}

type joiners struct {
	mu               sync.Mutex
	waiting          map[member]wait          // members whose JoinGroup or SyncGroup c may be holding
	generation       map[string]int32         // each group's latest generation in a request
	synced           map[string]int32         // each group's latest generation whose leader sent its SyncGroup
	rebalanceTimeout map[member]time.Duration // from each member's latest JoinGroup
	ours             map[member]bool          // our heartbeat for the member is in flight
}

// see follows the group requests c receives; it only looks, c answers them as usual.
func (j *joiners) see(req kmsg.Request) (kmsg.Response, error, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		if r.MemberID != "" {
			m := member{r.Group, r.MemberID}
			j.rebalanceTimeout[m] = time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
			j.waiting[m] = wait{generation: j.generation[r.Group], until: time.Now().Add(j.rebalanceTimeout[m])}
		}
	case *kmsg.SyncGroupRequest:
		m := member{r.Group, r.MemberID}
		j.answered(m, r.Generation)
		switch {
		case len(r.GroupAssignment) > 0: // the leader's: kfake answers every SyncGroup of the generation
			for other, w := range j.waiting {
				if other.group == r.Group && w.sync && w.generation <= r.Generation {
					delete(j.waiting, other)
				}
			}
			j.synced[r.Group] = max(j.synced[r.Group], r.Generation)
		case r.Generation > j.synced[r.Group]: // waits for the leader's
			j.waiting[m] = wait{generation: r.Generation, until: time.Now().Add(j.rebalanceTimeout[m]), sync: true}
		}
	case *kmsg.HeartbeatRequest:
		if m := (member{r.Group, r.MemberID}); !j.ours[m] {
			j.answered(m, r.Generation)
		}
	case *kmsg.LeaveGroupRequest:
		j.left(member{r.Group, r.MemberID})
		for _, m := range r.Members {
			j.left(member{r.Group, m.MemberID})
		}
	}
	return nil, nil, false
}

// left forgets m.
func (j *joiners) left(m member) {
	delete(j.waiting, m)
	delete(j.rebalanceTimeout, m)
}

// answered notes that m speaks again: it is not waiting in a JoinGroup or a SyncGroup.
func (j *joiners) answered(m member, generation int32) {
	delete(j.waiting, m)
	j.generation[m.group] = max(j.generation[m.group], generation)
}

// heartbeat sends a heartbeat for each waiting member. A JoinGroup's is at the generation the
// group had when it was sent: kfake takes it while the group prepares the rebalance (and
// answers REBALANCE_IN_PROGRESS); once the join phase completed the generation is stale and
// the member is no longer kept alive. A SyncGroup's is at its generation: kfake takes it while
// the group waits for the leader's SyncGroup (and answers no error); REBALANCE_IN_PROGRESS
// means the SyncGroup was answered with it, and the member must join again itself.
func (j *joiners) heartbeat(ctx context.Context, cl *kgo.Client) {
	j.mu.Lock()
	waiting := make(map[member]wait, len(j.waiting))
	for m, w := range j.waiting {
		if time.Now().After(w.until) {
			delete(j.waiting, m)
			continue
		}
		waiting[m] = w
	}
	j.mu.Unlock()
	for m, w := range waiting {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = m.group, m.id, w.generation
		j.mu.Lock()
		j.ours[m] = true
		j.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := req.RequestWith(rctx, cl)
		cancel()
		j.mu.Lock()
		delete(j.ours, m)
		alive := resp != nil && (w.sync && resp.ErrorCode == 0 || !w.sync && resp.ErrorCode == kerr.RebalanceInProgress.Code)
		if err == nil && !alive && j.waiting[m] == w {
			delete(j.waiting, m)
		}
		j.mu.Unlock()
	}
}
