package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// render writes the results as the Markdown of docs/performance.md's figures.
func render(o options, produceLatency time.Duration, results []result) string {
	var b strings.Builder
	latency := "answering at once"
	if produceLatency > 0 {
		latency = fmt.Sprintf("adding %v to every produce request of the system, as a replicated acks=all write takes", produceLatency)
		if o.delayTransactions && slices.ContainsFunc(results, func(r result) bool { return exactlyOnce(r.system) }) {
			latency += ", and to each of its transactional requests (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn), each a replicated write too"
		}
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
	transactions := false
	for _, r := range results {
		transactions = transactions || exactlyOnce(r.system)
	}
	fmt.Fprintf(&b, "#### Drain of a preloaded backlog of %d mixed requests\n\n", o.requests)
	if o.runs > 1 {
		fmt.Fprintf(&b, "Each row is %d drains: the median throughput (the slowest and the fastest in brackets), the highest peak RSS, and the losses, duplicates and wrong answers of all of them.\n\n", o.runs)
	}
	if transactions {
		b.WriteString("service-exactly-once is the service with KAFKA_DELIVERY=exactly-once (@ gives its KAFKA_TRANSACTION_INTERVAL, 100ms if not); its answers are read read_committed, so an answer counts when its transaction has committed. Of at-least-once is its drain's share of the service's at the same partition count, in the same run; commits/s the transactions it committed a second (EndTxn requests that commit). In the latency table, answers written is the latency to the answer's writing (its record's timestamp, which the producer sets) rather than to its reading: for exactly-once the difference is mostly the wait for the commit.\n\n")
	}
	b.WriteString("CPU a request is the CPU time (user and system) of the system's process over the drain, its start-up included, and broker CPU that of the benchmark's own process (the broker and the answer reader), both divided by the requests. Answers a produce request is how many answers the system's produce requests carried on average.")
	if produceLatency > 0 {
		b.WriteString(" Kept is the drain's share of the same system's drain with the broker answering at once, in the same run.")
	}
	atLeastOnce := map[int]float64{}
	for _, r := range results {
		if r.system == systemService && r.partitions > 0 {
			atLeastOnce[r.partitions] = r.perSecond
		}
	}
	commitsHeader, commitsRule := "", ""
	if transactions {
		commitsHeader, commitsRule = " of at-least-once | commits/s |", "---|---|"
	}
	b.WriteString("\n\n| system | partitions | requests/s | kept | of the ceiling | × watermill-kafka defaults | CPU a request | broker CPU a request | answers a produce request |" + commitsHeader + " peak RSS | lost | duplicates | wrong |\n|---|---|---|---|---|---|---|---|---|" + commitsRule + "---|---|---|---|\n")
	for _, r := range results {
		if r.partitions == 0 {
			continue
		}
		kept := "–"
		if r.kept > 0 {
			kept = fmt.Sprintf("%.0f%%", r.kept*100)
		}
		rate := fmt.Sprintf("%.0f", r.perSecond)
		if r.runs > 1 {
			rate += fmt.Sprintf(" (%.0f–%.0f)", r.slowest, r.fastest)
		}
		share := ""
		if transactions {
			share = " – |"
			if exactlyOnce(r.system) {
				share = " " + ratio(r.perSecond, atLeastOnce[r.partitions], "%.0f%%", 100) + " |"
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %.1f |%s%s %.1f MiB | %d | %d | %d |\n", r.system, r.partitions, rate, kept,
			ratio(r.perSecond, ceiling[r.partitions], "%.0f%%", 100), ratio(r.perSecond, baseline[r.partitions], "%.1f×", 1),
			µs(r.cpuPerRequest), µs(r.brokerCPUPerRequest), r.answersPerProduce, share, commitsCell(transactions, r), mib(r.peakRSS), r.lost, r.dups, r.wrong)
	}
	fmt.Fprintf(&b, "\n#### End-to-end latency at a steady %d requests/s for %v after %v of warm-up (4 partitions, requests spread by key)\n\n", o.rate, o.latencyFor, o.warmUp)
	if o.latencyRuns > 1 {
		fmt.Fprintf(&b, "Each row is %d runs: the median p50 and p99 (each run's in brackets), the highest peak RSS, and the losses, duplicates and wrong answers of all of them.\n\n", o.latencyRuns)
	}
	latencyCommitsHeader, latencyCommitsRule := "", ""
	if transactions {
		latencyCommitsHeader, latencyCommitsRule = " answers written, p50 / p99 | commits/s |", "---|---|"
	}
	b.WriteString("| system | p50 | p99 |" + latencyCommitsHeader + " peak RSS | lost | duplicates | wrong |\n|---|---|---|" + latencyCommitsRule + "---|---|---|---|\n")
	for _, r := range results {
		if r.partitions != 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s |%s %.1f MiB | %d | %d | %d |\n", r.system, spread(r.p50, r.p50s), spread(r.p99, r.p99s), commitsCell(transactions, r), mib(r.peakRSS), r.lost, r.dups, r.wrong)
	}
	return b.String()
}

// commitsCell is a row's commits/s cell, when the table has the column.
func commitsCell(transactions bool, r result) string {
	switch {
	case !transactions:
		return ""
	case !exactlyOnce(r.system) && r.partitions == 0:
		return fmt.Sprintf(" %s / %s | – |", ms(r.writtenP50), ms(r.writtenP99))
	case !exactlyOnce(r.system):
		return " – |"
	}
	if r.partitions == 0 {
		return fmt.Sprintf(" %s / %s | %.1f |", ms(r.writtenP50), ms(r.writtenP99), r.commitsPerSecond)
	}
	return fmt.Sprintf(" %.1f |", r.commitsPerSecond)
}

// spread is a median latency and, of more than one run, each run's.
func spread(median time.Duration, runs []time.Duration) string {
	s := ms(median)
	if len(runs) > 1 {
		each := make([]string, len(runs))
		for i, d := range runs {
			each[i] = strings.TrimSuffix(ms(d), " ms")
		}
		s += " (" + strings.Join(each, ", ") + ")"
	}
	return s
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
