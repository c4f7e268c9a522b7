package reliability_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/poison"
)

// figures are what a scenario reports: the load, the fault, what became of the requests and how
// long it took from the first request to the last answer.
type figures struct {
	scenario string
	fault    string
	tally    servicetest.Tally
	elapsed  time.Duration
	// exhausted counts pings answered on .failed because a fault outlasted their retries: an
	// answer the contract allows ("processing failed for good"), not a loss.
	exhausted int
	// felt is how the instances felt the fault: retries and redeliveries (nacks); nil for a
	// binary, whose metrics die with it.
	felt []*servicetest.Running
	// exactlyOnce fails the test on a duplicate too: the answers were read committed from
	// instances in exactly-once mode.
	exactlyOnce bool
}

// report logs the figures as a row of docs/reliability.md's table, and fails the test when a
// request was lost or answered wrongly.
func (f figures) report(t *testing.T) {
	t.Helper()
	retries, nacks := "-", "-"
	if f.felt != nil {
		r, n := 0.0, 0.0
		for _, s := range f.felt {
			r += metric(t, s, "pingpong_retries_total")
			n += metric(t, s, "pingpong_nacks_total")
		}
		retries, nacks = strconv.Itoa(int(r)), strconv.Itoa(int(n))
	}
	t.Logf("FIGURES | %s | %s | %d | %d | %d | %d | %d | %s | %s | %.1f s |", f.scenario, f.fault,
		f.tally.Requests, f.tally.Answered, len(f.tally.Missing), f.tally.Duplicates, f.exhausted, retries, nacks, f.elapsed.Seconds())
	if len(f.tally.Missing) > 0 || len(f.tally.Wrong) > 0 || (f.exactlyOnce && f.tally.Duplicates > 0) {
		t.Fatalf("%s\nmissing %v\nwrong %v", f.tally, head(f.tally.Missing), head(f.tally.Wrong))
	}
}

// serviceConfig is the service's configuration for brokers as servicetest gives it (short
// retries), edited by edit. KAFKA_TRANSPORT, when set, picks the transport, as it does for the
// binary: `KAFKA_TRANSPORT=watermill-kafka go test ./reliability/` runs the scenarios on the
// other one; RELIABILITY_DELIVERY=exactly-once runs them in exactly-once mode, each instance with
// its own transactional id (not KAFKA_DELIVERY: a caller's exported setting must not change the
// suite).
func serviceConfig(t *testing.T, brokers []string, edit ...func(*config.Service)) config.Service {
	t.Helper()
	cfg := servicetest.Config(t, brokers)
	if name, ok := os.LookupEnv("KAFKA_TRANSPORT"); ok {
		cfg.Transport.Name = name
	}
	if mode, ok := os.LookupEnv("RELIABILITY_DELIVERY"); ok {
		cfg.Transport.Delivery.Mode = mode
		cfg.Transport.Delivery.TransactionalID = fmt.Sprintf("reliability-%d", instances.Add(1))
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, e := range edit {
		e(&cfg)
	}
	return cfg
}

// instances numbers the instances a run starts, for their transactional ids.
var instances atomic.Int64

// load produces requests to .requested at a steady pace, in the background, until it is stopped
// or has sent them all: the traffic a fault happens in the middle of. The producer is an
// independent franz-go client, which retries through the faults as any client would.
type load struct {
	pool     []servicetest.Request
	offsets  []int64 // each sent request's offset in its partition
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	produced int
	err      error
}

// startLoad sends pool: its first requests at once (a backlog; 0 for none), then the others in
// chunks of chunk requests every interval.
func startLoad(t *testing.T, brokers []string, pool []servicetest.Request, first, chunk int, interval time.Duration, opts ...kgo.Opt) *load {
	t.Helper()
	cl := servicetest.Client(t, brokers, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{pool: pool, offsets: make([]int64, len(pool)), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for start, size := 0, max(first, chunk); start < len(pool); start, size = start+size, chunk {
			batch := pool[start:min(start+size, len(pool))]
			records := make([]*kgo.Record, len(batch))
			for i, r := range batch {
				records[i] = &kgo.Record{Topic: servicetest.Topics.Requested, Partition: r.Partition, Value: r.Body}
			}
			// Not ctx: a stopped load still waits for the chunk in flight, so that every
			// request counted as produced was acknowledged by the broker.
			pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
			err := cl.ProduceSync(pctx, records...).FirstErr()
			pcancel()
			l.mu.Lock()
			if err != nil {
				l.err = fmt.Errorf("producing requests %d to %d: %w", start, start+len(batch), err)
			} else {
				for i, rec := range records {
					l.offsets[start+i] = rec.Offset
				}
				l.produced += len(batch)
			}
			l.mu.Unlock()
			if err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-l.done })
	return l
}

// sent is how many requests the broker has acknowledged so far.
func (l *load) sent() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.produced
}

// offset is the offset of the i-th request sent.
func (l *load) offset(i int) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.offsets[i]
}

// stop ends the load and returns the requests sent.
func (l *load) stop(t *testing.T) []servicetest.Request {
	t.Helper()
	l.cancel()
	<-l.done
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.pool[:l.produced]
}

// finish waits for the load to send all its requests and returns them.
func (l *load) finish(t *testing.T, timeout time.Duration) []servicetest.Request {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(timeout):
		t.Fatalf("the load did not finish within %v (%d of %d sent)", timeout, l.sent(), len(l.pool))
	}
	return l.stop(t)
}

// waitFor polls cond until it holds, failing the test after timeout with what it waited for.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric sums the values of a metric of the service's registry over the series whose labels
// include labels ("k=v" pairs).
func metric(t *testing.T, svc *servicetest.Running, name string, labels ...string) float64 {
	t.Helper()
	families, err := svc.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		found := false
		for _, p := range m.GetLabel() {
			found = found || (p.GetName() == k && p.GetValue() == v)
		}
		if !found {
			return false
		}
	}
	return true
}

// handled is how many requests the instances have answered so far (duplicates included).
func handled(t *testing.T, svcs ...*servicetest.Running) int {
	t.Helper()
	n := 0.0
	for _, s := range svcs {
		n += metric(t, s, "pingpong_requests_total")
	}
	return int(n)
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// audit is servicetest.Check that also accepts, for a ping, a poison record saying its retries
// were exhausted: the contract's answer when processing fails for good, which a fault that
// outlasts the retries must give. It returns how many pings were answered so.
func audit(reqs []servicetest.Request, answers []servicetest.Answer) (servicetest.Tally, int) {
	var exhausted, others []servicetest.Answer
	for _, a := range answers {
		if a.Topic == servicetest.Topics.Failed && a.Headers[poison.HeaderReasonCode] == string(poison.ReasonRetriesExhausted) {
			exhausted = append(exhausted, a)
		} else {
			others = append(others, a)
		}
	}
	tally := servicetest.Check(reqs, others)
	byBody := make(map[string]*servicetest.Request, len(reqs))
	for i := range reqs {
		byBody[string(reqs[i].Body)] = &reqs[i]
	}
	missing := make(map[string]bool, len(tally.Missing))
	for _, tag := range tally.Missing {
		missing[tag] = true
	}
	pings := 0
	for _, a := range exhausted {
		req := byBody[a.Headers[poison.HeaderOriginal]]
		if req == nil {
			continue
		}
		want := `{"transaction-id": ` + idOf(*req) + `, "payload": {"message": "Error processing the event: `
		if req.Topic != servicetest.Topics.Succeeded || !strings.HasPrefix(a.Value, want) {
			tally.Wrong = append(tally.Wrong, req.Tag+": retries exhausted answer "+a.Value)
			continue
		}
		pings++
		if missing[req.Tag] {
			delete(missing, req.Tag)
			tally.Answered++
		} else {
			tally.Duplicates++
		}
	}
	tally.Missing = tally.Missing[:0]
	for _, r := range reqs {
		if missing[r.Tag] {
			tally.Missing = append(tally.Missing, r.Tag)
		}
	}
	return tally, pings
}

// collect reads the answers until every request has one (or a minute passes) and audits them.
func collect(t *testing.T, reader *servicetest.Reader, reqs []servicetest.Request) (servicetest.Tally, int) {
	t.Helper()
	reader.Await(t, reqs, time.Minute)
	return audit(reqs, reader.Answers())
}

// idOf is a ping's transaction id as written in it.
func idOf(r servicetest.Request) string {
	rest := strings.TrimPrefix(string(r.Body), `{"transaction-id": `)
	id, _, _ := strings.Cut(rest, ",")
	return id
}

func itoa(n int) string { return strconv.Itoa(n) }

func head(s []string) []string { return s[:min(len(s), 10)] }
