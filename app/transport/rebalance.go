package transport

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/flow"
)

// worker returns the partition's worker, starting one if the partition is new; nil if the
// partition is not owned (revoked or lost since the poll that returned its records).
func (c *consumer) worker(partition int32) *partitionWorker {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.partitions[partition]
	if !ok {
		if !c.owned[partition] {
			return nil
		}
		w = newPartitionWorker(c, partition)
		c.partitions[partition] = w
		c.senders.Add(3)
		go w.run()
		go w.sendReady()
		go w.awaitAcks()
	}
	return w
}

func (c *consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	for _, p := range assigned[c.topic] {
		c.owned[p] = true
	}
	c.mu.Unlock()
	_, generation := cl.GroupMetadata()
	c.cfg.Assignment.Assigned(generation, assigned)
	c.logger.Info("Partitions assigned", watermill.LogFields{"partitions": assigned[c.topic]})
}

// revoked stops the revoked partitions, lets their messages in flight finish and commits them,
// so the next owner starts after what this member answered.
func (c *consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	workers := c.detach(revoked[c.topic])
	_, generation := cl.GroupMetadata()
	c.cfg.Assignment.Revoked(generation, revoked)
	if e := c.cfg.ExactlyOnce; e != nil {
		// The open transaction aborts (the session refuses to commit it), and every partition
		// is read again from its committed offset; nothing to drain or commit here. Ending
		// the transaction here would deadlock: the session holds its lock while this runs.
		if len(revoked[c.topic]) > 0 {
			e.txns.Doom(flow.AbortRebalance)
		}
		c.logger.Info("Partitions revoked: the open transaction aborts", watermill.LogFields{"partitions": revoked[c.topic]})
		return
	}
	c.logger.Info("Partitions revoked: finishing the messages in flight", watermill.LogFields{"partitions": revoked[c.topic]})
	c.drain(workers, c.cfg.DrainTimeout)
	if err := cl.CommitMarkedOffsets(ctx); err != nil && !c.watch.commitFailed(err) {
		c.logger.Error("Committing the revoked partitions failed; their next owner may answer some requests again", err, nil)
	}
}

// lost stops the lost partitions without committing: another member owns them already.
func (c *consumer) lost(_ context.Context, cl *kgo.Client, lost map[string][]int32) {
	c.detach(lost[c.topic])
	_, generation := cl.GroupMetadata()
	c.cfg.Assignment.Revoked(generation, lost)
	if e := c.cfg.ExactlyOnce; e != nil {
		e.txns.Doom(flow.AbortRebalance)
	}
	c.logger.Info("Partitions lost: their next owner answers what was in flight", watermill.LogFields{"partitions": lost[c.topic]})
}

// restartPartitions stops every partition's worker, dropping what it holds, while the partitions
// stay owned: after an aborted transaction the client reads them again from their committed
// offsets, and the next poll starts new workers.
func (c *consumer) restartPartitions() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, w := range c.partitions {
		w.halt()
		delete(c.partitions, p)
	}
}

func (c *consumer) detach(partitions []int32) []*partitionWorker {
	c.mu.Lock()
	defer c.mu.Unlock()
	var workers []*partitionWorker
	for _, p := range partitions {
		delete(c.owned, p)
		if w, ok := c.partitions[p]; ok {
			w.halt()
			delete(c.partitions, p)
			workers = append(workers, w)
		}
	}
	return workers
}

// drain waits until the workers' messages in flight are acked or the timeout passes.
func (c *consumer) drain(workers []*partitionWorker, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		for _, w := range workers {
			<-w.engine.Idle()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		c.logger.Info("Gave up waiting for messages in flight; they will be delivered again", watermill.LogFields{"timeout": timeout})
	}
}

// close ends the subscription once: stop polling, drain, commit, leave the group, close the
// channel.
func (c *consumer) close() error {
	c.closeOnce.Do(func() { c.closeErr = c.shutdown() })
	return c.closeErr
}

func (c *consumer) shutdown() error {
	c.stopPolling()
	<-c.pollDone
	c.mu.Lock()
	all := make([]int32, 0, len(c.partitions))
	for p := range c.partitions {
		all = append(all, p)
	}
	c.mu.Unlock()
	c.drain(c.detach(all), c.cfg.DrainTimeout)
	c.hardStop() // what is still in flight gives up: it was not acked, so it is delivered again
	c.senders.Wait()
	var err error
	if c.session != nil {
		// The poll loop has ended the last transaction, with its offsets.
		c.session.Close()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = c.client.CommitMarkedOffsets(ctx)
		c.client.Close() // leaves the group
	}
	close(c.out)
	return err
}
