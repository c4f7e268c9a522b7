// Command bench compares, in one run and against one in-process Kafka-protocol broker, the
// pingpong service, the Watermill router on watermill-kafka's defaults (where the service
// started), and a minimal franz-go consume-answer-ack-commit loop (the practical ceiling).
//
//	go run ./bench                       # the full run (task bench); writes docs/performance.md
//	go run ./bench -requests 20000 -partitions 4 -runs 1 -out ''   # a quick look
//	go run ./bench -produce-latency 2ms -runs 1  # as on a replicated cluster: each write takes 2 ms
//
// For each system it measures the drain throughput of a preloaded backlog of mixed requests,
// the end-to-end latency at a steady request rate, and the peak resident memory of the process,
// and checks that every request was answered exactly as the contract says.
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
	var partitions, systems string
	flag.IntVar(&opts.requests, "requests", 100_000, "requests in each preloaded backlog")
	flag.IntVar(&opts.runs, "runs", 3, "drains of each system and partition count; the median throughput is reported")
	flag.StringVar(&partitions, "partitions", "1,4,16", "partition counts of the drain runs")
	flag.IntVar(&opts.rate, "rate", 1000, "requests per second of the latency run")
	flag.DurationVar(&opts.latencyFor, "latency-for", 10*time.Second, "length of the latency run")
	flag.StringVar(&systems, "systems", strings.Join([]string{systemService, systemWatermill, systemCeiling}, ","), "systems to compare")
	flag.StringVar(&opts.out, "out", "docs/performance.md", "Markdown file for the results; empty prints only")
	flag.DurationVar(&opts.produceLatency, "produce-latency", 0, "delay the broker adds to every produce request, as a replicated acks=all write takes on a real cluster")
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
	if opts.runs < 1 {
		fmt.Fprintf(os.Stderr, "bench: -runs %d: at least one run is needed\n", opts.runs)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	requests   int
	runs       int
	partitions []int
	rate       int
	latencyFor time.Duration
	systems    []string
	out        string
	// produceLatency models a real cluster's write round trip (kfake answers at once).
	produceLatency time.Duration
}

// buildService builds the pingpong binary the way a release does.
func buildService(dir string) (string, error) {
	bin := filepath.Join(dir, "pingpong")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./app")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}
