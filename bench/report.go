package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// render writes the results as the Markdown of docs/performance.md's figures.
func render(o options, produceLatency time.Duration, results []result) string {
	var b strings.Builder
	latency := "answering at once"
	if produceLatency > 0 {
		latency = fmt.Sprintf("adding %v to every produce request of the system, as a replicated acks=all write takes", produceLatency)
	}
	fmt.Fprintf(&b, "Measured by `go run ./bench` (`task bench`) on %s, %s, load average %s at the end of the run. One in-process kfake broker %s; each system in its own process.\n\n", machine(), time.Now().UTC().Format("2006-01-02"), loadAverage(), latency)
	ceiling := map[int]float64{}
	for _, r := range results {
		if r.system == systemCeiling && r.partitions > 0 {
			ceiling[r.partitions] = r.perSecond
		}
	}
	baseline := map[int]float64{}
	for _, r := range results {
		if r.system == systemWatermill && r.partitions > 0 {
			baseline[r.partitions] = r.perSecond
		}
	}
	fmt.Fprintf(&b, "#### Drain of a preloaded backlog of %d mixed requests\n\n", o.requests)
	if o.runs > 1 {
		fmt.Fprintf(&b, "Each row is %d drains: the median throughput, the highest peak RSS, and the losses, duplicates and wrong answers of all of them.\n\n", o.runs)
	}
	b.WriteString("CPU a request is the CPU time (user and system) of the system's process over the drain, its start-up included, and broker CPU that of the benchmark's own process (the broker and the answer reader), both divided by the requests. Answers a produce request is how many answers the system's produce requests carried on average.")
	if produceLatency > 0 {
		b.WriteString(" Kept is the drain's share of the same system's drain with the broker answering at once, in the same run.")
	}
	b.WriteString("\n\n| system | partitions | requests/s | kept | of the ceiling | × watermill-kafka defaults | CPU a request | broker CPU a request | answers a produce request | peak RSS | lost | duplicates | wrong |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.partitions == 0 {
			continue
		}
		kept := "–"
		if r.kept > 0 {
			kept = fmt.Sprintf("%.0f%%", r.kept*100)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s | %s | %.1f | %.1f MiB | %d | %d | %d |\n", r.system, r.partitions, r.perSecond, kept,
			ratio(r.perSecond, ceiling[r.partitions], "%.0f%%", 100), ratio(r.perSecond, baseline[r.partitions], "%.1f×", 1),
			µs(r.cpuPerRequest), µs(r.brokerCPUPerRequest), r.answersPerProduce, mib(r.peakRSS), r.lost, r.dups, r.wrong)
	}
	fmt.Fprintf(&b, "\n#### End-to-end latency at a steady %d requests/s for %v after %v of warm-up (4 partitions, requests spread by key)\n\n", o.rate, o.latencyFor, o.warmUp)
	b.WriteString("| system | p50 | p99 | peak RSS | lost | duplicates | wrong |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.partitions != 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f MiB | %d | %d | %d |\n", r.system, ms(r.p50), ms(r.p99), mib(r.peakRSS), r.lost, r.dups, r.wrong)
	}
	return b.String()
}

// loadAverage is the machine's load over the last minute: the figures are ratios of one run on
// shared cores, and a busy machine moves them.
func loadAverage() string {
	avg, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(avg))[0]
}

func ratio(v, of float64, format string, scale float64) string {
	if of <= 0 {
		return "–"
	}
	return fmt.Sprintf(format, v/of*scale)
}

func µs(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
