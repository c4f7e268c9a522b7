package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
)

// Queue is the poison queue of one topic prefix on one cluster.
type Queue struct {
	// Topics are the service's topics: Failed is read, Requested is where replays go.
	Topics config.Topics
	client *kgo.Client
	admin  *kadm.Client
	// timeout bounds each admin request (KAFKA_TIMEOUT).
	timeout time.Duration
}

// Open connects to the cluster (failing within KAFKA_TIMEOUT when no broker answers) and checks
// that the poison queue exists.
// opts are more client options (a logger, say).
func Open(ctx context.Context, k config.Kafka, opts ...kgo.Opt) (*Queue, error) {
	client, err := kafkaclient.Connect(ctx, k, append([]kgo.Opt{
		// A direct consumer, never a group: partitions are added and removed as they are read.
		kgo.KeepControlRecords(), // so that a transaction marker at the end does not hide the end
		// What a reader of the poison queue sees is what was committed: the records of an
		// aborted transaction are not poison records.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A replayed request is acknowledged or reported failed within KAFKA_TIMEOUT, never
		// retried forever against a cluster that went away.
		kgo.RecordDeliveryTimeout(max(k.Timeout, time.Second)), // franz-go takes no less than 1s
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	q := &Queue{Topics: k.Topics(), client: client, admin: kadm.NewClient(client), timeout: k.Timeout}
	if _, err := q.partitions(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return q, nil
}

// Close closes the connection.
func (q *Queue) Close() { q.client.Close() }

// Range selects records by where they are and when they were poisoned.
type Range struct {
	// Since and Until bound the poison records' timestamps: Since included, Until excluded. Zero
	// means no bound. They are turned into offsets with the broker's time index
	// (ListOffsetsAfterMilli), and the records are checked too.
	Since, Until time.Time
	// Offsets, when set, reads only the partitions named, each from its offset.
	Offsets map[int32]int64
	// Follow keeps reading after the end offsets known at the start, until the context is done.
	Follow bool
}

// Selection is a Range, a Filter and a limit: what the list, stats and replay commands take.
type Selection struct {
	Range
	Filter
	// Limit stops after so many matching records; 0 means no limit.
	Limit int
}

// ErrStop ends a Read early, without an error.
var ErrStop = errors.New("stop reading")

// Select calls fn with each record the selection matches, in the order of Read.
func (q *Queue) Select(ctx context.Context, sel Selection, fn func(Record) error) error {
	matched := 0
	return q.Read(ctx, sel.Range, func(r Record) error {
		if !sel.Match(r) {
			return nil
		}
		matched++
		if err := fn(r); err != nil {
			return err
		}
		if sel.Limit > 0 && matched >= sel.Limit {
			return ErrStop
		}
		return nil
	})
}

// bounds is where reading a partition starts and where it stops (excluded).
type bounds struct {
	partition  int32
	start, end int64
}

// Read calls fn with each record of the poison queue in rng: one partition after the other, each
// in offset order, up to the end offsets known when Read starts; then, with Follow, new records
// of every partition as they arrive until ctx is done. fn returning ErrStop ends the read.
func (q *Queue) Read(ctx context.Context, rng Range, fn func(Record) error) error {
	plan, err := q.plan(ctx, rng)
	if err != nil {
		return err
	}
	for _, b := range plan {
		if b.start >= b.end {
			continue
		}
		if err := q.readPartition(ctx, b, rng, fn); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	if !rng.Follow {
		return nil
	}
	err = q.follow(ctx, plan, rng, fn)
	if errors.Is(err, ErrStop) || (err != nil && ctx.Err() != nil) {
		return nil
	}
	return err
}

// readPartition reads one partition from b.start up to b.end.
func (q *Queue) readPartition(ctx context.Context, b bounds, rng Range, fn func(Record) error) error {
	topic := q.Topics.Failed
	q.client.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {b.partition: kgo.NewOffset().At(b.start)}})
	defer q.client.RemoveConsumePartitions(map[string][]int32{topic: {b.partition}})
	for {
		fetches := q.client.PollFetches(ctx)
		if err := fetchError(ctx, fetches); err != nil {
			return err
		}
		done := false
		var stop error
		fetches.EachRecord(func(r *kgo.Record) {
			if done || stop != nil || r.Topic != topic || r.Partition != b.partition || r.Offset < b.start {
				return
			}
			if r.Offset >= b.end-1 {
				done = true
			}
			if r.Offset >= b.end || r.Attrs.IsControl() || !rng.contains(r.Timestamp) {
				return
			}
			stop = fn(Decode(r))
		})
		if stop != nil {
			return stop
		}
		if done {
			return nil
		}
	}
}

// follow reads every planned partition from its end on, until ctx is done.
func (q *Queue) follow(ctx context.Context, plan []bounds, rng Range, fn func(Record) error) error {
	topic := q.Topics.Failed
	offsets := map[int32]kgo.Offset{}
	for _, b := range plan {
		offsets[b.partition] = kgo.NewOffset().At(max(b.start, b.end))
	}
	q.client.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets})
	for {
		fetches := q.client.PollFetches(ctx)
		if err := fetchError(ctx, fetches); err != nil {
			return err
		}
		var stop error
		fetches.EachRecord(func(r *kgo.Record) {
			if stop != nil || r.Topic != topic || r.Attrs.IsControl() || !rng.contains(r.Timestamp) {
				return
			}
			stop = fn(Decode(r))
		})
		if stop != nil {
			return stop
		}
	}
}

func fetchError(ctx context.Context, fetches kgo.Fetches) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if fetches.IsClientClosed() {
		return errors.New("the Kafka client was closed")
	}
	for _, fe := range fetches.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
			continue
		}
		return fmt.Errorf("reading %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
	}
	return nil
}

func (rng Range) contains(t time.Time) bool {
	return (rng.Since.IsZero() || !t.Before(rng.Since)) && (rng.Until.IsZero() || t.Before(rng.Until))
}

// plan finds, for each partition to read, where to start and where to stop.
func (q *Queue) plan(ctx context.Context, rng Range) ([]bounds, error) {
	partitions, err := q.partitions(ctx)
	if err != nil {
		return nil, err
	}
	ends, err := q.listOffsets(ctx, "end", q.admin.ListEndOffsets)
	if err != nil {
		return nil, err
	}
	starts, err := q.listOffsets(ctx, "start", q.admin.ListStartOffsets)
	if err != nil {
		return nil, err
	}
	var since, until map[int32]int64
	if !rng.Since.IsZero() {
		if since, err = q.offsetsAfter(ctx, rng.Since); err != nil {
			return nil, err
		}
	}
	if !rng.Until.IsZero() {
		if until, err = q.offsetsAfter(ctx, rng.Until); err != nil {
			return nil, err
		}
	}
	if rng.Offsets != nil {
		for p := range rng.Offsets {
			if !slices.Contains(partitions, p) {
				return nil, fmt.Errorf("%s has no partition %d (it has %s)", q.Topics.Failed, p, describePartitions(partitions))
			}
		}
	}
	var plan []bounds
	for _, p := range partitions {
		b := bounds{partition: p, start: starts[p], end: ends[p]}
		if rng.Offsets != nil {
			o, ok := rng.Offsets[p]
			if !ok {
				continue
			}
			b.start = max(b.start, o)
		}
		if since != nil {
			b.start = max(b.start, since[p])
		}
		if until != nil {
			b.end = min(b.end, until[p])
		}
		plan = append(plan, b)
	}
	return plan, nil
}

// partitions lists the poison queue's partitions, sorted.
func (q *Queue) partitions(ctx context.Context) ([]int32, error) {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	topics, err := q.admin.ListTopics(ctx, q.Topics.Failed)
	if err != nil {
		return nil, fmt.Errorf("reading the metadata of %s: %w", q.Topics.Failed, err)
	}
	td, ok := topics[q.Topics.Failed]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return nil, fmt.Errorf("the topic %s does not exist: is TOPIC_PREFIX right? (`pingpong topics create` creates it)", q.Topics.Failed)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("reading the metadata of %s: %w", q.Topics.Failed, td.Err)
	}
	partitions := td.Partitions.Numbers()
	slices.Sort(partitions)
	return partitions, nil
}

type listFunc func(context.Context, ...string) (kadm.ListedOffsets, error)

func (q *Queue) listOffsets(ctx context.Context, what string, list listFunc) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	listed, err := list(ctx, q.Topics.Failed)
	return offsetsOf(listed, err, q.Topics.Failed, what)
}

func (q *Queue) offsetsAfter(ctx context.Context, t time.Time) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	listed, err := q.admin.ListOffsetsAfterMilli(ctx, t.UnixMilli(), q.Topics.Failed)
	return offsetsOf(listed, err, q.Topics.Failed, "first offsets after "+t.UTC().Format(time.RFC3339))
}

func offsetsOf(listed kadm.ListedOffsets, err error, topic, what string) (map[int32]int64, error) {
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the %s offsets of %s: %w", what, topic, err)
	}
	offsets := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic {
			offsets[o.Partition] = o.Offset
		}
	})
	return offsets, nil
}

func describePartitions(ps []int32) string {
	switch len(ps) {
	case 0:
		return "none"
	case 1:
		return fmt.Sprintf("partition %d only", ps[0])
	}
	return fmt.Sprintf("partitions %d to %d", ps[0], ps[len(ps)-1])
}

// whereRecordsAre says which positions hold records, for someone who asked for a position in an
// empty partition (with several partitions, where a record lands is the partitioner's choice).
func whereRecordsAre(partitions []int32, starts, ends map[int32]int64) string {
	const most = 5 // partitions named
	var at []string
	more := 0
	for _, p := range partitions {
		start, end := starts[p], ends[p]
		switch {
		case start >= end:
			continue
		case len(at) == most:
			more++
		case end-start == 1:
			at = append(at, fmt.Sprintf("%d:%d", p, start))
		default:
			at = append(at, fmt.Sprintf("%d:%d to %d:%d", p, start, p, end-1))
		}
	}
	switch {
	case len(at) == 0:
		return "so are all the others: the poison queue is empty"
	case more == 1:
		at = append(at, "another partition")
	case more > 1:
		at = append(at, fmt.Sprintf("%d other partitions", more))
	}
	list := at[0]
	if len(at) > 1 {
		list = strings.Join(at[:len(at)-1], ", ") + " and " + at[len(at)-1]
	}
	return "records are at " + list + " (the AT column of `pingpong dlq list`)"
}

// ErrNoRecord is a position that holds no record.
var ErrNoRecord = errors.New("no record")

// Get reads the one record at partition:offset.
func (q *Queue) Get(ctx context.Context, partition int32, offset int64) (Record, error) {
	partitions, err := q.partitions(ctx)
	if err != nil {
		return Record{}, err
	}
	if !slices.Contains(partitions, partition) {
		return Record{}, fmt.Errorf("%w at %d:%d: %s has no partition %d (it has %s)", ErrNoRecord, partition, offset, q.Topics.Failed, partition, describePartitions(partitions))
	}
	starts, err := q.listOffsets(ctx, "start", q.admin.ListStartOffsets)
	if err != nil {
		return Record{}, err
	}
	ends, err := q.listOffsets(ctx, "end", q.admin.ListEndOffsets)
	if err != nil {
		return Record{}, err
	}
	start, end := starts[partition], ends[partition]
	switch {
	case start >= end:
		return Record{}, fmt.Errorf("%w at %d:%d: partition %d of %s is empty; %s", ErrNoRecord, partition, offset, partition, q.Topics.Failed, whereRecordsAre(partitions, starts, ends))
	case offset < start || offset >= end:
		return Record{}, fmt.Errorf("%w at %d:%d: partition %d of %s holds offsets %d to %d", ErrNoRecord, partition, offset, partition, q.Topics.Failed, start, end-1)
	}
	var found *Record
	err = q.readPartition(ctx, bounds{partition: partition, start: offset, end: end}, Range{}, func(r Record) error {
		if r.Offset == offset {
			found = &r
		}
		return ErrStop
	})
	if err != nil && !errors.Is(err, ErrStop) {
		return Record{}, err
	}
	if found == nil {
		return Record{}, fmt.Errorf("%w at %d:%d: removed by compaction, or a transaction marker", ErrNoRecord, partition, offset)
	}
	return *found, nil
}
