package main

import (
	"fmt"
	"strings"
	"time"
)

// render writes the results as the Markdown of docs/performance.md's figures.
func render(o options, results []result) string {
	var b strings.Builder
	latency := "answering at once"
	if o.produceLatency > 0 {
		latency = fmt.Sprintf("adding %v to every produce request, as a replicated acks=all write takes (`-produce-latency %v`)", o.produceLatency, o.produceLatency)
	}
	fmt.Fprintf(&b, "Measured by `go run ./bench` (`task bench`) on %s, %s. One in-process kfake broker %s; each system in its own process.\n\n", machine(), time.Now().UTC().Format("2006-01-02"), latency)
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
	b.WriteString("CPU a request is the CPU time (user and system) of the system's process over the drain, its start-up included, and broker CPU that of the benchmark's own process (the broker and the answer reader), both divided by the requests. Answers a produce request is how many answers the system's produce requests carried on average.\n\n")
	b.WriteString("| system | partitions | requests/s | of the ceiling | × watermill-kafka defaults | CPU a request | broker CPU a request | answers a produce request | peak RSS | lost | duplicates | wrong |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.partitions == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s | %.1f | %.1f MiB | %d | %d | %d |\n", r.system, r.partitions, r.perSecond,
			ratio(r.perSecond, ceiling[r.partitions], "%.0f%%", 100), ratio(r.perSecond, baseline[r.partitions], "%.1f×", 1),
			µs(r.cpuPerRequest), µs(r.brokerCPUPerRequest), r.answersPerProduce, mib(r.peakRSS), r.lost, r.dups, r.wrong)
	}
	fmt.Fprintf(&b, "\n#### End-to-end latency at a steady %d requests/s for %v (4 partitions)\n\n", o.rate, o.latencyFor)
	b.WriteString("| system | p50 | p99 | peak RSS | lost | duplicates | wrong |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.partitions != 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f MiB | %d | %d | %d |\n", r.system, ms(r.p50), ms(r.p99), mib(r.peakRSS), r.lost, r.dups, r.wrong)
	}
	return b.String()
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
