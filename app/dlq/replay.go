package dlq

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/poison"
)

// DefaultMaxReplays is how often a request may be replayed by default.
const DefaultMaxReplays = 3

// Decision is what replay does with one poison record.
type Decision struct {
	Record Record
	// Skip says why the record is not replayed; empty means it is.
	Skip string
}

// Why a record is not replayed. They are reported, never guessed around.
const (
	SkipLegacy     = "from before the poison headers: no original request to send"
	SkipOmitted    = "the original request was omitted (too large to carry)"
	SkipNoOriginal = "no original request (no pingpong_original header)"
)

// SkipReplayed is the reason for a record whose request was replayed max times already.
func SkipReplayed(count, max int) string {
	return fmt.Sprintf("replayed %d times already (--max-replays %d)", count, max)
}

// Decide tells whether r can be replayed: it must carry its original request and have been
// replayed fewer than maxReplays times.
func Decide(r Record, maxReplays int) Decision {
	d := Decision{Record: r}
	switch {
	case r.Legacy():
		d.Skip = SkipLegacy
	case r.OriginalOmitted != "":
		d.Skip = SkipOmitted
	case !r.HasOriginal:
		d.Skip = SkipNoOriginal
	case r.ReplayCount >= maxReplays:
		d.Skip = SkipReplayed(r.ReplayCount, maxReplays)
	}
	return d
}

// Plan reads the records sel selects and decides for each.
func (q *Queue) Plan(ctx context.Context, sel Selection, maxReplays int) ([]Decision, error) {
	var plan []Decision
	err := q.Select(ctx, sel, func(r Record) error {
		plan = append(plan, Decide(r, maxReplays))
		return nil
	})
	return plan, err
}

// ReplayRequest is the request a replay sends for r to topic: the original bytes and key, the
// request's own headers, and the replay headers, pingpong_replayed_from (where it came from)
// and pingpong_replay_count (one more than the record's). The service carries both to the
// poison record if the request fails again.
func ReplayRequest(r Record, topic string) *kgo.Record {
	rec := &kgo.Record{Topic: topic, Value: r.Original}
	if r.HasOriginalKey {
		rec.Key = r.OriginalKey
	}
	rec.Headers = append(rec.Headers, r.RequestHeaders()...)
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: poison.HeaderReplayedFrom, Value: []byte(r.Address())},
		kgo.RecordHeader{Key: poison.HeaderReplayCount, Value: []byte(strconv.Itoa(r.ReplayCount + 1))},
	)
	return rec
}

// Sent is the outcome of one replayed request.
type Sent struct {
	From Record
	// To is the request record as the broker stored it (partition and offset set), when Err is nil.
	To  *kgo.Record
	Err error
}

// Summary counts what a replay did.
type Summary struct {
	Replayed int
	Failed   int
	// Skipped counts the records not replayed, by why.
	Skipped map[string]int
}

// Summarize counts a plan's skips; Replayed and Failed come from Send.
func Summarize(plan []Decision) Summary {
	s := Summary{Skipped: map[string]int{}}
	for _, d := range plan {
		if d.Skip != "" {
			s.Skipped[d.Skip]++
		}
	}
	return s
}

// ToReplay counts the records of plan that are to be replayed.
func ToReplay(plan []Decision) int {
	n := 0
	for _, d := range plan {
		if d.Skip == "" {
			n++
		}
	}
	return n
}

// SkipReasons lists the summary's skip reasons, sorted.
func (s Summary) SkipReasons() []string { return slices.Sorted(maps.Keys(s.Skipped)) }

// Send replays the plan's records that are not skipped to <prefix>.requested, at most rate a
// second (rate <= 0: no limit), calling sent for each once the broker answered (from several
// goroutines, one at a time). It returns the number replayed and failed; a cancelled ctx stops
// it between records.
func (q *Queue) Send(ctx context.Context, plan []Decision, rate float64, sent func(Sent)) (replayed, failed int, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	n := 0
	for _, d := range plan {
		if d.Skip != "" {
			continue
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(due)):
			}
		}
		if ctx.Err() != nil {
			break
		}
		n++
		wg.Add(1)
		from := d.Record
		// The produce outlives a cancelled ctx: a request handed to the client is either
		// acknowledged or reported as failed, never left unknown.
		q.client.Produce(context.WithoutCancel(ctx), ReplayRequest(from, q.Topics.Requested), func(r *kgo.Record, perr error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if perr != nil {
				failed++
				sent(Sent{From: from, Err: perr})
				return
			}
			replayed++
			sent(Sent{From: from, To: r})
		})
	}
	wg.Wait()
	return replayed, failed, ctx.Err()
}
