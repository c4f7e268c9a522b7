// Command bench compares, in one run and against one in-process Kafka-protocol broker, the
// pingpong service, the Watermill router on watermill-kafka's defaults (where the service
// started), and a minimal franz-go consume-answer-ack-commit loop (the practical ceiling).
//
//	go run ./bench                       # the full run (task bench); writes docs/performance.md
//	go run ./bench -requests 20000 -partitions 4 -runs 1 -out ''   # a quick look
//	go run ./bench -produce-latency 0,2ms -runs 1  # and as on a replicated cluster: each write takes 2 ms
//	go run ./bench -produce-latency '' -out ''     # only the hot-key scenario (-hot-key 2ms,5ms)
//
// For each produce latency (the broker answering at once, then a 2 ms and a 10 ms write) and each
// system it measures the drain throughput of a preloaded backlog of mixed requests, the
// end-to-end latency at a steady request rate, and the peak resident memory of the process, and
// checks that every request was answered exactly as the contract says. With a latency, each
// drain is also given as the share it kept of the same system's drain at zero latency. Then the
// hot-key scenario: one partition, a backlog of one key, other keys arriving while it drains.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if system := os.Getenv("PINGPONG_BENCH_CHILD"); system != "" {
		if err := runChild(system); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	opts := options{}
	var partitions, systems, delayedSystems, latencies, hotKeyLatencies, hotKeyOrderings string
	flag.IntVar(&opts.requests, "requests", 100_000, "requests in each preloaded backlog")
	flag.IntVar(&opts.runs, "runs", 3, "drains of each system and partition count; the median throughput is reported")
	flag.StringVar(&partitions, "partitions", "1,4,16", "partition counts of the drain runs")
	flag.IntVar(&opts.rate, "rate", 1000, "requests per second of the latency run")
	flag.IntVar(&opts.latencyRuns, "latency-runs", 1, "latency runs of each system; the median p50 and p99 are reported, with their spread")
	flag.DurationVar(&opts.latencyFor, "latency-for", 8*time.Second, "length of the latency run, after its warm-up; 0 for drains only")
	flag.DurationVar(&opts.warmUp, "warm-up", 3*time.Second, "steady load before the latency run's measured part")
	flag.StringVar(&systems, "systems", strings.Join([]string{systemService, systemWatermill, systemCeiling}, ","), "systems to compare")
	flag.StringVar(&opts.out, "out", "docs/performance.md", "Markdown file for the results; empty prints only")
	flag.StringVar(&opts.block, "block", "", "a name for the figures' blocks in -out, so that a run of other systems or settings (the exactly-once comparison) keeps blocks of its own")
	flag.StringVar(&latencies, "produce-latency", "0,2ms,10ms", "delays the broker adds to every produce request of the system, as a replicated acks=all write takes on a real cluster: one run each, in this order, each written to its own block")
	flag.BoolVar(&opts.delayTransactions, "delay-transactions", true, "give an exactly-once system's transactional requests (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn) the produce latency too: each is a replicated write on a real cluster")
	flag.StringVar(&delayedSystems, "delayed-systems", strings.Join([]string{systemService, systemCeiling}, ","),
		"the systems measured with a produce latency too; watermill-kafka's defaults pay it once a message per partition (a 100,000 drain takes about 4 minutes a partition count at 2 ms, 20 at 10 ms)")
	flag.StringVar(&opts.serviceBinary, "service-binary", "", "a pingpong binary to measure instead of building ./app (to compare two builds)")
	flag.StringVar(&hotKeyLatencies, "hot-key", "2ms,5ms", "produce latencies of the hot-key scenario (one partition, a backlog of one key, other keys arriving meanwhile), each on a broker of its own; empty to skip it")
	flag.StringVar(&hotKeyOrderings, "hot-key-orderings", "key,partition,none", "KAFKA_ORDERING values the hot-key scenario runs the service with")
	flag.IntVar(&opts.hotKey.records, "hot-key-records", 3000, "the hot key's backlog")
	flag.IntVar(&opts.hotKey.rate, "hot-key-rate", 20, "other keys' requests a second during the hot-key scenario")
	flag.DurationVar(&opts.hotKey.minFor, "hot-key-min", 3*time.Second, "the other keys are sent at least this long, and until the hot backlog is drained")
	flag.Parse()
	for _, p := range strings.Split(partitions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -partitions %q: not a list of counts\n", partitions)
			os.Exit(2)
		}
		opts.partitions = append(opts.partitions, n)
	}
	opts.systems = strings.Split(systems, ",")
	opts.delayedSystems = strings.Split(delayedSystems, ",")
	for _, s := range append(append([]string{}, opts.systems...), opts.delayedSystems...) {
		if !knownSystem(s) {
			fmt.Fprintf(os.Stderr, "bench: system %q: not one of %s, %s[@KAFKA_TRANSACTION_INTERVAL], %s, %s\n", s, systemService, systemExactlyOnce, systemWatermill, systemCeiling)
			os.Exit(2)
		}
	}
	opts.produceLatencies = durations("produce-latency", latencies)
	opts.hotKey.latencies = durations("hot-key", hotKeyLatencies)
	if hotKeyOrderings != "" {
		opts.hotKey.orderings = strings.Split(hotKeyOrderings, ",")
	}
	if opts.hotKey.rate < 1 || opts.hotKey.records < 1 {
		fmt.Fprintln(os.Stderr, "bench: -hot-key-rate and -hot-key-records must be at least 1")
		os.Exit(2)
	}
	if opts.runs < 1 || opts.latencyRuns < 1 {
		fmt.Fprintf(os.Stderr, "bench: -runs %d, -latency-runs %d: at least one run of each is needed\n", opts.runs, opts.latencyRuns)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// durations reads flag's comma-separated list of durations ("0" is one); an empty list is none.
func durations(flag, list string) []time.Duration {
	var ds []time.Duration
	for _, l := range strings.Split(list, ",") {
		l = strings.TrimSpace(l)
		if l == "" && list == "" {
			break
		}
		d, err := time.ParseDuration(l)
		if l == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			fmt.Fprintf(os.Stderr, "bench: -%s %q: not a list of durations\n", flag, list)
			os.Exit(2)
		}
		ds = append(ds, d)
	}
	return ds
}

type options struct {
	requests    int
	runs        int
	partitions  []int
	rate        int
	latencyRuns int
	latencyFor  time.Duration
	warmUp      time.Duration
	systems     []string
	out         string
	block       string
	// produceLatencies model a real cluster's write round trip (kfake answers at once), one
	// run each; delayedSystems are the systems that run with a latency.
	produceLatencies []time.Duration
	delayedSystems   []string
	// delayTransactions gives the transactional requests the produce latency too.
	delayTransactions bool
	serviceBinary     string
	hotKey            hotKeyOptions
}

// buildService builds the pingpong binary the way a release does.
func buildService(dir string) (string, error) {
	bin := filepath.Join(dir, "pingpong")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./app")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}
