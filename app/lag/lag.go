// Package lag measures how far the service's consumer group is behind its input topic and
// exports it as Prometheus metrics, so that lag is on the service's own /metrics without a
// separate exporter.
//
// A Collector polls the cluster in the background, every Interval and bounded by Timeout, and a
// scrape reads the last measurement. It does not ask the cluster on each scrape: every replica of
// the service exports the same group's lag, and every Prometheus of an HA pair scrapes every
// replica, so measuring on scrape would multiply the admin requests by replicas x scrapers and
// tie the scrape's latency to the cluster's. Polling keeps the load at one measurement per
// replica per Interval whoever scrapes, and a scrape never waits for the cluster.
//
// Lag is counted in records, per partition: the partition's end offset (the offset the next
// record will get) minus the group's committed offset (the next record the group will read).
// Lag in seconds is not exported: it needs the timestamp of the record at the committed offset,
// that is one fetch per partition per poll, and dividing the lag by the consumption rate would be
// an estimate dressed as a measurement. The end-to-end latency histogram gives the time view.
package lag

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Defaults for a Config left at zero.
const (
	DefaultInterval = 10 * time.Second
	// staleIntervals is how many intervals a measurement outlives failed polls: long enough
	// that one failed poll does not blank the lag (and reset an alert's "for"), short enough
	// that an outage does not show an old lag as current.
	staleIntervals = 3
)

// Config says whose lag to measure and how often.
type Config struct {
	// Group is the consumer group (KAFKA_CONSUMER_GROUP).
	Group string
	// Topic is the topic the group consumes (<prefix>.requested).
	Topic string
	// UncommittedFromStart says where the group starts on a partition it never committed to:
	// from the log start (KAFKA_CONSUMER_OFFSET=earliest), so everything in the partition is
	// lag, or from the end (latest), so nothing is.
	UncommittedFromStart bool
	// Interval between two polls; 0 means DefaultInterval.
	Interval time.Duration
	// Timeout bounds one poll; 0 means Interval.
	Timeout time.Duration
	// StaleAfter is how long a measurement is exported when the polls after it fail; 0 means
	// three intervals.
	StaleAfter time.Duration
	// StallLogAfter is how long a partition is stalled before it is logged (then every five
	// minutes, and once when it moves again); 0 means a minute.
	StallLogAfter time.Duration
	// Logger receives a line when polls start failing and when they recover; nil logs nothing.
	Logger *logrus.Entry
}

// Partition is one partition's measurement.
type Partition struct {
	Partition int32
	// End is the partition's end offset: the offset the next record produced will get.
	End int64
	// Committed is the group's committed offset, or -1 if the group never committed here.
	Committed int64
	// Lag is the records the group has still to read.
	Lag int64
	// Stalled is how long the committed offset has not moved while the partition had lag: 0
	// when it moves or there is nothing to read. A partition that cannot get past a record, or
	// that no member consumes, grows it; a slow one does not.
	Stalled time.Duration
}

// Collector is a prometheus.Collector of the group's lag, measured in the background.
type Collector struct {
	cfg Config
	adm *kadm.Client

	lag, end, committed, stalled *prometheus.Desc
	pollErrors                   prometheus.Counter

	mu   sync.Mutex
	last []Partition
	// movedAt is when each partition's committed offset last moved, or it last had no lag.
	movedAt map[int32]time.Time
	// stallLogged is when a stalled partition was last logged.
	stallLogged map[int32]time.Time
	lastAt      time.Time
	failing     bool
	stop        context.CancelFunc
	stopped     chan struct{}
	stopOnce    sync.Once
}

// NewCollector starts measuring at once and then every cfg.Interval, until Close. Register it
// with a prometheus.Registerer to export the measurements.
func NewCollector(adm *kadm.Client, cfg Config) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = cfg.Interval
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = staleIntervals * cfg.Interval
	}
	labels := []string{"group", "topic", "partition"}
	c := &Collector{
		cfg: cfg,
		adm: adm,
		lag: prometheus.NewDesc("pingpong_consumer_lag",
			"Records of the partition the consumer group has still to read: end offset minus committed offset, measured every few seconds.",
			labels, nil),
		end: prometheus.NewDesc("pingpong_consumer_end_offset",
			"End offset of a partition the consumer group reads: the offset the next record produced gets. It only grows; its rate is the rate records arrive.",
			labels, nil),
		committed: prometheus.NewDesc("pingpong_consumer_committed_offset",
			"Offset the consumer group committed on the partition (the next record it reads), or -1 if it never committed there. Its rate is the rate records are done.",
			labels, nil),
		stalled: prometheus.NewDesc("pingpong_consumer_stalled_seconds",
			"Seconds the consumer group's committed offset on the partition has not moved while the partition had records to read; 0 while it moves or there is nothing to read.",
			labels, nil),
		movedAt:     map[int32]time.Time{},
		stallLogged: map[int32]time.Time{},
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pingpong_consumer_lag_poll_errors_total",
			Help: "Lag measurements that failed (the cluster did not answer in time, or refused); the lag is not exported once it is stale.",
		}),
		stopped: make(chan struct{}),
	}
	ctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go c.loop(ctx)
	return c
}

func (c *Collector) loop(ctx context.Context) {
	defer close(c.stopped)
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		_ = c.Poll(ctx) // a failure is counted and logged by Poll, and the next tick tries again
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Close stops polling and waits for a poll under way to end. It never fails; the error is for
// the shape of a closer.
func (c *Collector) Close() error {
	c.stopOnce.Do(func() {
		c.stop()
		<-c.stopped
	})
	return nil
}

// Poll measures the lag now and keeps the measurement for the next scrapes. The background loop
// calls it every Interval; it is exported for callers that want a fresh measurement at once.
func (c *Collector) Poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	partitions, err := c.measure(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
			return err // closing, not failing
		}
		c.pollErrors.Inc()
		if !c.failing && c.cfg.Logger != nil {
			c.cfg.Logger.WithError(err).WithFields(logrus.Fields{"group": c.cfg.Group, "topic": c.cfg.Topic}).
				Warn("Could not measure the consumer lag; retrying every interval")
		}
		c.failing = true
		return err
	}
	if c.failing && c.cfg.Logger != nil {
		c.cfg.Logger.WithFields(logrus.Fields{"group": c.cfg.Group, "topic": c.cfg.Topic}).Info("Measuring the consumer lag again")
	}
	c.failing = false
	now := time.Now()
	previous := map[int32]Partition{}
	for _, p := range c.last {
		previous[p.Partition] = p
	}
	for i, p := range partitions {
		before, known := previous[p.Partition]
		if _, seen := c.movedAt[p.Partition]; !seen || !known || p.Lag == 0 || p.Committed != before.Committed {
			c.movedAt[p.Partition] = now
		}
		partitions[i].Stalled = now.Sub(c.movedAt[p.Partition])
		c.logStall(partitions[i], now)
	}
	c.last, c.lastAt = partitions, now
	return nil
}

// Stalls are logged once a partition has been stalled for stallLogAfter, then every
// stallLogEvery while it lasts, and once when it moves again.
const (
	defaultStallLogAfter = time.Minute
	stallLogEvery        = 5 * time.Minute
)

// logStall logs p's stall as the constants above say; c.mu is held.
func (c *Collector) logStall(p Partition, now time.Time) {
	if c.cfg.Logger == nil {
		return
	}
	fields := logrus.Fields{"group": c.cfg.Group, "topic": c.cfg.Topic, "partition": p.Partition, "committed": p.Committed, "lag": p.Lag}
	stallLogAfter := c.cfg.StallLogAfter
	if stallLogAfter <= 0 {
		stallLogAfter = defaultStallLogAfter
	}
	last, logged := c.stallLogged[p.Partition]
	switch {
	case p.Stalled >= stallLogAfter && (!logged || now.Sub(last) >= stallLogEvery):
		c.stallLogged[p.Partition] = now
		c.cfg.Logger.WithFields(fields).WithField("stalled", p.Stalled.Round(time.Second).String()).
			Warn("Partition stalled: its committed offset has not moved while records wait")
	case p.Stalled < stallLogAfter && logged:
		delete(c.stallLogged, p.Partition)
		c.cfg.Logger.WithFields(fields).Info("Partition moving again")
	}
}

// measure asks the cluster for the topic's end offsets (and start offsets, if an uncommitted
// partition counts from the start) and the group's commits on the topic, and lets kadm's
// group-lag calculation turn them into lags. It asks for one topic only, rather than through
// kadm's Client.Lag, which also describes the group and lists every topic the group consumes.
func (c *Collector) measure(ctx context.Context) ([]Partition, error) {
	ends, err := c.adm.ListEndOffsets(ctx, c.cfg.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", c.cfg.Topic, err)
	}
	var starts kadm.ListedOffsets
	if c.cfg.UncommittedFromStart {
		if starts, err = c.adm.ListStartOffsets(ctx, c.cfg.Topic); err == nil {
			err = starts.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing the start offsets of %s: %w", c.cfg.Topic, err)
		}
	}
	// FetchOffsetsForTopics answers -1 for every partition the group has not committed to. A
	// group that does not exist yet (no instance ever joined) has committed nothing: some
	// brokers say so with GROUP_ID_NOT_FOUND.
	commits, err := c.adm.FetchOffsetsForTopics(ctx, c.cfg.Group, c.cfg.Topic)
	if err == nil {
		err = commits.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		commits, err = kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetching the offsets group %s committed on %s: %w", c.cfg.Group, c.cfg.Topic, err)
	}
	// The topic's entry, even empty, makes the calculation cover every partition it lists.
	if commits[c.cfg.Topic] == nil {
		commits[c.cfg.Topic] = map[int32]kadm.OffsetResponse{}
	}
	// No members: the lag of a committed partition is end minus commit, whoever consumes it (0
	// where a commit is ahead of the end, as a moment after a leader change), and of an
	// uncommitted one end minus start, or the whole end without start offsets.
	lags := kadm.CalculateGroupLagWithStartOffsets(kadm.DescribedGroup{Group: c.cfg.Group}, commits, starts, ends)

	var partitions []Partition
	ends.Each(func(end kadm.ListedOffset) {
		p := Partition{Partition: end.Partition, End: end.Offset, Committed: -1}
		l, ok := lags.Lookup(end.Topic, end.Partition)
		if ok && l.Err == nil {
			p.Lag = l.Lag
			if l.Commit.At >= 0 {
				p.Committed = l.Commit.At
			}
		}
		// A group starting from the end (KAFKA_CONSUMER_OFFSET=latest) owes nothing on a
		// partition it never committed to; kadm counts such a partition whole.
		if p.Committed < 0 && !c.cfg.UncommittedFromStart {
			p.Lag = 0
		}
		partitions = append(partitions, p)
	})
	return partitions, nil
}

// Partitions is the last measurement still fresh (see Config.StaleAfter), or nil.
func (c *Collector) Partitions() []Partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || time.Since(c.lastAt) > c.cfg.StaleAfter {
		return nil
	}
	return append([]Partition(nil), c.last...)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.end
	ch <- c.committed
	ch <- c.stalled
	c.pollErrors.Describe(ch)
}

// Collect implements prometheus.Collector: the last fresh measurement, nothing for the lag when
// there is none (an unknown lag is absent, not 0).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.Partitions() {
		labels := []string{c.cfg.Group, c.cfg.Topic, strconv.Itoa(int(p.Partition))}
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(p.Lag), labels...)
		ch <- prometheus.MustNewConstMetric(c.end, prometheus.GaugeValue, float64(p.End), labels...)
		ch <- prometheus.MustNewConstMetric(c.committed, prometheus.GaugeValue, float64(p.Committed), labels...)
		ch <- prometheus.MustNewConstMetric(c.stalled, prometheus.GaugeValue, p.Stalled.Seconds(), labels...)
	}
	c.pollErrors.Collect(ch)
}
