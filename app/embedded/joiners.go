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

// KeepJoinersAlive heartbeats every second for each group member whose JoinGroup c is holding
// while the group rebalances, until c answers it, and returns a function that stops. Kafka keeps
// a member that waits in a JoinGroup in the group; kfake lets its session expire (a client
// sends no heartbeat while it waits) and drops it without answering: the client learns it only
// when its JoinGroup times out (the rebalance timeout and franz-go's 10 s, 70 s for the service)
// and, with cooperative rebalancing, goes on answering its partitions all that time while the
// group gives them to another member. docs/reliability.md has the whole story.
func KeepJoinersAlive(c *kfake.Cluster) (stop func(), err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		return nil, err
	}
	j := &joiners{waiting: map[member]wait{}, generation: map[string]int32{}, ours: map[member]bool{}}
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

// wait is a member's JoinGroup: the group's generation when it was sent, and until when to keep
// the member alive (its rebalance timeout, after which Kafka ends the join phase too).
type wait struct {
	generation int32
	until      time.Time
}

type joiners struct {
	mu         sync.Mutex
	waiting    map[member]wait  // members whose JoinGroup c may be holding
	generation map[string]int32 // each group's latest generation in a request
	ours       map[member]bool  // our heartbeat for the member is in flight
}

// see follows the group requests c receives; it only looks, c answers them as usual.
func (j *joiners) see(req kmsg.Request) (kmsg.Response, error, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		if r.MemberID != "" {
			until := time.Now().Add(time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond)
			j.waiting[member{r.Group, r.MemberID}] = wait{j.generation[r.Group], until}
		}
	case *kmsg.SyncGroupRequest:
		j.answered(member{r.Group, r.MemberID}, r.Generation)
	case *kmsg.HeartbeatRequest:
		if m := (member{r.Group, r.MemberID}); !j.ours[m] {
			j.answered(m, r.Generation)
		}
	case *kmsg.LeaveGroupRequest:
		delete(j.waiting, member{r.Group, r.MemberID})
		for _, m := range r.Members {
			delete(j.waiting, member{r.Group, m.MemberID})
		}
	}
	return nil, nil, false
}

// answered notes that m speaks again: it is not waiting in a JoinGroup.
func (j *joiners) answered(m member, generation int32) {
	delete(j.waiting, m)
	j.generation[m.group] = max(j.generation[m.group], generation)
}

// heartbeat sends a heartbeat for each waiting member at the generation the group had when it
// sent its JoinGroup. kfake takes it while the group prepares the rebalance (and answers
// REBALANCE_IN_PROGRESS); once the rebalance completed the generation is stale and the member
// is no longer kept alive.
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
		if err == nil && resp.ErrorCode != kerr.RebalanceInProgress.Code && j.waiting[m] == w {
			delete(j.waiting, m)
		}
		j.mu.Unlock()
	}
}
