package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/bench/procfs"
)

// result is one measurement of one system.
type result struct {
	system     string
	partitions int     // 0 for the latency run
	perSecond  float64 // drain throughput
	p50, p99   time.Duration
	// writtenP50 and writtenP99 are the latencies to the answers' writing (their record
	// timestamps) rather than to their reading: for an exactly-once system, the difference is
	// mostly the wait for the transaction's commit.
	writtenP50, writtenP99 time.Duration
	peakRSS                int64 // bytes
	// cpuPerRequest is the system's CPU time (user and system) divided by the requests it
	// answered, and brokerCPUPerRequest the same for this process (the broker, the answer reader),
	// over the drain: where a shared machine's cores went.
	cpuPerRequest, brokerCPUPerRequest time.Duration
	// answersPerProduce is how many answers the system's produce requests carried on average:
	// the broker's and the reader's work goes mostly by request and by batch, not by record.
	answersPerProduce float64
	lost, dups        int
	wrong             int
	runs              int // drains summarized (the median throughput of them)
	// slowest and fastest are the lowest and highest throughput of the drains summarized, and
	// p50s and p99s the latency runs' (their medians are p50 and p99): the spread.
	slowest, fastest float64
	p50s, p99s       []time.Duration
	// commitsPerSecond is how many transactions the system committed a second (EndTxn
	// requests that commit) over the drain or the latency run's measured part; 0 for a system
	// that writes without transactions.
	commitsPerSecond float64
	// kept is the drain's share of the same system's drain with no produce latency, in the same
	// run (0 when there is none).
	kept float64
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "pingpong-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	service := o.serviceBinary
	if service == "" {
		if service, err = buildService(dir); err != nil {
			return fmt.Errorf("building the service: %w", err)
		}
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		return err
	}
	defer cluster.Close()
	// Each produce request of the system under test waits before the broker handles it, as long
	// as the current run's latency says; SleepControl lets the broker serve everything else
	// meanwhile. The load generator's requests do not wait: at 1,000 requests a second, one
	// record a request, its own connection would queue behind the writes and the latency run
	// would measure that queue instead of the system.
	tb := &testbed{cluster: cluster, brokers: cluster.ListenAddrs(), service: service}
	tb.control(o.delayTransactions)

	runID := 0
	atOnce := map[drainKey]float64{} // the drains with no produce latency, for the kept shares
	failed := false
	for _, produceLatency := range o.produceLatencies {
		tb.produceLatency.Store(int64(produceLatency))
		systems := o.systems
		if produceLatency > 0 {
			systems = only(o.systems, o.delayedSystems)
		}
		var results []result
		for _, partitions := range o.partitions {
			for _, system := range systems {
				var runs []result
				for range o.runs {
					runID++
					r, err := drain(o, tb, system, partitions, runID)
					if err != nil {
						return fmt.Errorf("%s, %d partitions, produce latency %v: %w", system, partitions, produceLatency, err)
					}
					fmt.Fprintf(os.Stderr, "drain  %-26s %2d partitions, produce latency %4v: %8.0f requests/s, CPU %s + broker %s a request, %.1f answers a produce request, peak RSS %5.1f MiB, lost %d, duplicates %d, wrong %d\n",
						system, partitions, produceLatency, r.perSecond, µs(r.cpuPerRequest), µs(r.brokerCPUPerRequest), r.answersPerProduce, mib(r.peakRSS), r.lost, r.dups, r.wrong)
					runs = append(runs, r)
				}
				r := summarize(runs)
				if produceLatency == 0 {
					atOnce[drainKey{system, partitions}] = r.perSecond
				} else if zero := atOnce[drainKey{system, partitions}]; zero > 0 {
					r.kept = r.perSecond / zero
				}
				results = append(results, r)
			}
		}
		for _, system := range systems {
			if o.latencyFor <= 0 {
				break
			}
			var runs []result
			for range o.latencyRuns {
				runID++
				r, err := latency(o, tb, system, runID)
				if err != nil {
					return fmt.Errorf("%s, latency, produce latency %v: %w", system, produceLatency, err)
				}
				fmt.Fprintf(os.Stderr, "steady %-26s %d requests/s, produce latency %4v: p50 %v, p99 %v (answers written: p50 %v, p99 %v), %.1f commits/s, peak RSS %5.1f MiB, lost %d, duplicates %d, wrong %d\n",
					system, o.rate, produceLatency, r.p50, r.p99, r.writtenP50, r.writtenP99, r.commitsPerSecond, mib(r.peakRSS), r.lost, r.dups, r.wrong)
				runs = append(runs, r)
			}
			results = append(results, summarizeLatency(runs))
		}
		report := render(o, produceLatency, results)
		fmt.Print(report)
		if o.out != "" {
			if err := writeFigures(o.out, o.block, produceLatency, report); err != nil {
				return err
			}
		}
		for _, r := range results {
			failed = failed || r.lost > 0 || r.wrong > 0
		}
	}
	if len(o.hotKey.latencies) > 0 {
		results, err := hotKey(o.hotKey, service)
		if err != nil {
			return err
		}
		report := renderHotKey(o.hotKey, results)
		fmt.Print(report)
		if o.out != "" {
			if err := writeBlock(o.out, hotKeyBlock, report); err != nil {
				return err
			}
		}
		for _, r := range results {
			failed = failed || r.lost > 0 || r.wrong > 0
		}
	}
	if failed {
		return errors.New("requests were lost or answered wrongly")
	}
	return nil
}

// hotKeyBlock names the hot-key scenario's figures block.
const hotKeyBlock = "hot key"

// drainKey names the drains of one system at one partition count.
type drainKey struct {
	system     string
	partitions int
}

// only keeps the systems that are also in allowed, in their order.
func only(systems, allowed []string) []string {
	var kept []string
	for _, s := range systems {
		for _, a := range allowed {
			if s == a {
				kept = append(kept, s)
				break
			}
		}
	}
	return kept
}

// summarize makes one result of repeated drains: the median throughput (the machine's noise is
// several percent from one drain to the next), the highest peak memory, the mean CPU per
// request, and every loss, duplicate and wrong answer of all of them.
func summarize(runs []result) result {
	sum := runs[0]
	rates := make([]float64, 0, len(runs))
	for i, r := range runs {
		rates = append(rates, r.perSecond)
		if i == 0 {
			continue
		}
		sum.peakRSS = max(sum.peakRSS, r.peakRSS)
		sum.cpuPerRequest += r.cpuPerRequest
		sum.brokerCPUPerRequest += r.brokerCPUPerRequest
		sum.answersPerProduce += r.answersPerProduce
		sum.commitsPerSecond += r.commitsPerSecond
		sum.lost += r.lost
		sum.dups += r.dups
		sum.wrong += r.wrong
	}
	sort.Float64s(rates)
	sum.perSecond = median(rates)
	sum.slowest, sum.fastest = rates[0], rates[len(rates)-1]
	sum.runs = len(runs)
	sum.cpuPerRequest /= time.Duration(len(runs))
	sum.brokerCPUPerRequest /= time.Duration(len(runs))
	sum.answersPerProduce /= float64(len(runs))
	sum.commitsPerSecond /= float64(len(runs))
	return sum
}

// summarizeLatency makes one result of repeated latency runs: the median p50 and p99 (each
// run's kept for the spread), the highest peak memory, the mean commits a second, and every
// loss, duplicate and wrong answer.
func summarizeLatency(runs []result) result {
	sum := runs[0]
	sum.p50s, sum.p99s = []time.Duration{runs[0].p50}, []time.Duration{runs[0].p99}
	for _, r := range runs[1:] {
		sum.p50s, sum.p99s = append(sum.p50s, r.p50), append(sum.p99s, r.p99)
		sum.peakRSS = max(sum.peakRSS, r.peakRSS)
		sum.commitsPerSecond += r.commitsPerSecond
		sum.lost += r.lost
		sum.dups += r.dups
		sum.wrong += r.wrong
	}
	sort.Slice(sum.p50s, func(i, j int) bool { return sum.p50s[i] < sum.p50s[j] })
	sort.Slice(sum.p99s, func(i, j int) bool { return sum.p99s[i] < sum.p99s[j] })
	sum.p50, sum.p99 = medianDuration(sum.p50s), medianDuration(sum.p99s)
	var written50, written99 []time.Duration
	for _, r := range runs {
		written50, written99 = append(written50, r.writtenP50), append(written99, r.writtenP99)
	}
	sort.Slice(written50, func(i, j int) bool { return written50[i] < written50[j] })
	sort.Slice(written99, func(i, j int) bool { return written99[i] < written99[j] })
	sum.writtenP50, sum.writtenP99 = medianDuration(written50), medianDuration(written99)
	sum.runs = len(runs)
	sum.commitsPerSecond /= float64(len(runs))
	return sum
}

// median of sorted values.
func median(sorted []float64) float64 {
	if len(sorted)%2 == 0 {
		return (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return sorted[len(sorted)/2]
}

func medianDuration(sorted []time.Duration) time.Duration {
	if len(sorted)%2 == 0 {
		return (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return sorted[len(sorted)/2]
}

// process is a system under test, running.
type process struct {
	cmd  *exec.Cmd
	done chan error
}

// start runs system on brokers with its topics and group named by prefix; env is added to its
// environment (a KAFKA_ORDERING for the service), after the system's own (KAFKA_DELIVERY).
func start(service, system string, brokers []string, prefix string, env ...string) (*process, error) {
	var cmd *exec.Cmd
	if serviceEnv, ok := serviceEnv(system); ok {
		cmd = exec.Command(service)
		env = append(serviceEnv, env...)
	} else {
		cmd = exec.Command(os.Args[0])
		cmd.Env = append(cmd.Env, "PINGPONG_BENCH_CHILD="+system)
	}
	cmd.Env = append(os.Environ(), append(cmd.Env,
		"KAFKA_BROKERS="+strings.Join(brokers, ","),
		"TOPIC_PREFIX="+prefix,
		"KAFKA_CONSUMER_GROUP="+prefix,
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_LEVEL=warn",
	)...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// peakRSS is the process's high-water mark of resident memory (VmHWM).
func (p *process) peakRSS() int64 { return procfs.PeakRSS(p.cmd.Process.Pid) }

// cpu is the process's CPU time so far, user and system (utime and stime of /proc/PID/stat).
func (p *process) cpu() time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis
	// start at field 3, so utime and stime (14 and 15) are the 12th and 13th of them.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicksPerSecond
}

// clockTicksPerSecond is the unit of /proc's CPU times (USER_HZ), 100 on every Linux platform
// Go supports.
const clockTicksPerSecond = 100

// ownCPU is this process's CPU time so far, user and system.
func ownCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("did not stop within 30s of SIGTERM")
	}
}

func client(brokers []string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0)}, opts...)...)
}

// drain preloads a backlog, starts the system and times it from its first answer to its last.
func drain(o options, tb *testbed, system string, partitions, runID int) (result, error) {
	cluster, brokers, service := tb.cluster, tb.brokers, tb.service
	prefix := fmt.Sprintf("bench%d", runID)
	if err := topics(cluster, prefix, partitions); err != nil {
		return result{}, err
	}
	reqs := requests(prefix, o.requests, partitions)
	producer, err := client(brokers)
	if err != nil {
		return result{}, err
	}
	defer producer.Close()
	if err := produce(producer, prefix, reqs); err != nil {
		return result{}, err
	}
	reader, err := newAnswerReader(brokers, prefix, exactlyOnce(system))
	if err != nil {
		return result{}, err
	}
	defer reader.close()

	brokerCPUBefore := ownCPU()
	tb.answers.reset()
	tb.commits.Store(0)
	p, err := start(service, system, brokers, prefix)
	if err != nil {
		return result{}, err
	}
	reader.waitFor(reqs, 5*time.Minute)
	commits := tb.commits.Load()
	peak := p.peakRSS()
	cpu, brokerCPU := p.cpu(), ownCPU()-brokerCPUBefore
	stopErr := p.stop()
	tally := reader.tally(reqs)
	r := result{system: system, partitions: partitions, peakRSS: peak, lost: len(tally.Missing), dups: tally.Duplicates, wrong: len(tally.Wrong),
		cpuPerRequest: cpu / time.Duration(o.requests), brokerCPUPerRequest: brokerCPU / time.Duration(o.requests),
		answersPerProduce: tb.answers.perRequest()}
	if first, last, inFirstPoll := reader.span(); last.After(first) {
		r.perSecond = float64(o.requests-inFirstPoll) / last.Sub(first).Seconds()
		// The transactions of the drain, counted from the system's start: the first answer
		// is read only once the first transaction has committed.
		r.commitsPerSecond = float64(commits) / last.Sub(first).Seconds()
	}
	return r, stopErr
}

// latency sends requests at a steady rate to a running system and measures, per request, the
// time from its send to its answer being read back.
func latency(o options, tb *testbed, system string, runID int) (result, error) {
	cluster, brokers, service := tb.cluster, tb.brokers, tb.service
	prefix := fmt.Sprintf("bench%d", runID)
	if err := topics(cluster, prefix, 4); err != nil {
		return result{}, err
	}
	reader, err := newAnswerReader(brokers, prefix, exactlyOnce(system))
	if err != nil {
		return result{}, err
	}
	defer reader.close()
	p, err := start(service, system, brokers, prefix)
	if err != nil {
		return result{}, err
	}
	// Requests are keyed by their transaction id and spread by the key's hash, as a client
	// keying by transaction id writes them, not dealt round the partitions in turn: in turn,
	// each partition's next request came only after one on every other, so a partition whose
	// next fetch was late was never waited for.
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
	if err != nil {
		return result{}, err
	}
	defer producer.Close()

	// The system has joined its group once these are answered.
	joined := requests(prefix+"-joined", 4, 4)
	if err := produce(producer, prefix, joined); err != nil {
		return result{}, err
	}
	if !reader.waitFor(joined, time.Minute) {
		_ = p.stop()
		return result{}, errors.New("the first requests were not answered")
	}
	// Then the same steady load, unmeasured, for the warm-up (connections, the collector's pace).
	steady(producer, prefix, requests(prefix+"-warm", int(o.warmUp.Seconds()*float64(o.rate)), 4), o.rate)

	reqs := requests(prefix, int(o.latencyFor.Seconds()*float64(o.rate)), 4)
	commitsBefore, began := tb.commits.Load(), time.Now()
	sent := steady(producer, prefix, reqs, o.rate)
	commits, took := tb.commits.Load()-commitsBefore, time.Since(began)
	reader.waitFor(reqs, time.Minute)
	peak := p.peakRSS()
	stopErr := p.stop()
	tally := reader.tally(reqs)
	r := result{system: system, peakRSS: peak, lost: len(tally.Missing), dups: tally.Duplicates, wrong: len(tally.Wrong),
		commitsPerSecond: float64(commits) / took.Seconds()}
	r.p50, r.p99 = percentiles(reader.firstAnswerAt(reqs), sent)
	r.writtenP50, r.writtenP99 = percentiles(reader.firstAnswerWrittenAt(reqs), sent)
	return r, stopErr
}

// percentiles are the p50 and p99 of the times from each request's send to at.
func percentiles(at, sent map[string]time.Time) (p50, p99 time.Duration) {
	var delays []time.Duration
	for tag, t := range at {
		delays = append(delays, t.Sub(sent[tag]))
	}
	if len(delays) == 0 {
		return 0, 0
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	return delays[len(delays)/2], delays[len(delays)*99/100]
}

// steady sends reqs at rate a second, each on its own, and tells when each was sent.
func steady(producer *kgo.Client, prefix string, reqs []request, rate int) map[string]time.Time {
	sent := make(map[string]time.Time, len(reqs))
	interval := time.Second / time.Duration(rate)
	next := time.Now()
	for _, r := range reqs {
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		rec := record(prefix, r)
		rec.Partition = 0 // spread by key
		sent[r.Tag] = time.Now()
		producer.Produce(context.Background(), rec, nil)
	}
	return sent
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func machine() string {
	cpu := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s %s/%s", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// writeFigures puts the figures between markers of the output file, one block per produce
// latency, so that the prose around them and the other blocks stay; a named block (-block)
// has blocks of its own.
func writeFigures(path, block string, latency time.Duration, figures string) error {
	name := fmt.Sprintf("produce latency %v", latency)
	if block != "" {
		name = block + ", " + name
	}
	return writeBlock(path, name, figures)
}

// writeBlock puts figures between the markers of the block name, or appends them.
func writeBlock(path, name, figures string) error {
	figuresStart := fmt.Sprintf("<!-- figures, %s: written by go run ./bench -->", name)
	figuresEnd := fmt.Sprintf("<!-- end of figures, %s -->", name)
	doc, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(doc)
	start, end := strings.Index(text, figuresStart), strings.Index(text, figuresEnd)
	block := figuresStart + "\n" + figures + figuresEnd
	if start < 0 || end < start {
		text = strings.TrimRight(text, "\n") + "\n\n" + block + "\n"
	} else {
		text = text[:start] + block + text[end+len(figuresEnd):]
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
