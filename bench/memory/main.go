// Command memory measures the service's peak resident memory (VmHWM) under the hostile input of
// issue 13: requests that compress thousands of times over, so that fetches bounded in compressed
// bytes decode to gigabytes. Each case runs the built binary, without GOMEMLIMIT, against its own
// in-process broker, waits until every request is answered or poisoned, and reads the process's
// peak RSS; the table goes to docs/security.md.
//
//	go run ./bench/memory [-out docs/security.md]
//	go run ./bench/memory -cases '100 KB'   # some cases only, printed
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/bench/procfs"
)

// hostileCase is one input: records pings of recordBytes each, over partitions, written by a
// producer with codec in batches of perBatch records a partition.
type hostileCase struct {
	name        string
	records     int
	partitions  int
	perBatch    int
	recordBytes int
	codec       kgo.CompressionCodec
	env         []string
	// keyBytes, when not 0, gives each record a key of that many bytes (its tag, padded).
	keyBytes int
}

const pingBytes = 500_000

var cases = []hostileCase{
	{name: "256 pings of 500 KB, zstd, 2 a batch", records: 256, partitions: 4, perBatch: 2, recordBytes: pingBytes, codec: kgo.ZstdCompression()},
	{name: "768 pings of 500 KB, zstd, 2 a batch", records: 768, partitions: 12, perBatch: 2, recordBytes: pingBytes, codec: kgo.ZstdCompression()},
	{name: "2,000 pings of 500 KB, zstd, 2 a batch", records: 2000, partitions: 16, perBatch: 2, recordBytes: pingBytes, codec: kgo.ZstdCompression()},
	{name: "2,000 pings of 500 KB in one zstd batch (1 GB decoded)", records: 2000, partitions: 1, perBatch: 2000, recordBytes: pingBytes, codec: kgo.ZstdCompression()},
	{name: "256 pings of 500 KB, gzip, 16 a batch", records: 256, partitions: 4, perBatch: 16, recordBytes: pingBytes, codec: kgo.GzipCompression()},
	{name: "256 pings of 500 KB, lz4, 2 a batch", records: 256, partitions: 4, perBatch: 2, recordBytes: pingBytes, codec: kgo.Lz4Compression()},
	{name: "256 pings of 500 KB, lz4, 16 a batch", records: 256, partitions: 4, perBatch: 16, recordBytes: pingBytes, codec: kgo.Lz4Compression()},
	{name: "256 pings of 500 KB, snappy, 2 a batch", records: 256, partitions: 4, perBatch: 2, recordBytes: pingBytes, codec: kgo.SnappyCompression()},
	{name: "256 pings of 500 KB, uncompressed, 1 a batch", records: 256, partitions: 4, perBatch: 1, recordBytes: pingBytes, codec: kgo.NoCompression()},
	// A key is copied more often than a value on its way through (issue 18): the same bytes in
	// keys, then in values.
	{name: "8,000 pings with 100 KB keys, zstd, 2 a batch", records: 8000, partitions: 4, perBatch: 2, keyBytes: 100_000, codec: kgo.ZstdCompression()},
	{name: "8,000 pings of 100 KB, zstd, 2 a batch", records: 8000, partitions: 4, perBatch: 2, recordBytes: 100_000, codec: kgo.ZstdCompression()},
}

type result struct {
	answered, poisoned int
	took               time.Duration
	peakRSS            int64
}

func main() {
	out := flag.String("out", "docs/security.md", "file whose figures block is rewritten; empty for none")
	only := flag.String("cases", "", "run only the cases whose name contains this text, and print their table without writing -out")
	flag.Parse()
	if *only != "" {
		*out = ""
		var kept []hostileCase
		for _, c := range cases {
			if strings.Contains(c.name, *only) {
				kept = append(kept, c)
			}
		}
		cases = kept
	}
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	binary, remove, err := servicetest.BuildBinary("./app", "")
	if err != nil {
		return err
	}
	defer remove()
	var table strings.Builder
	table.WriteString("| input | requests | answered / poison records | time | peak RSS |\n|---|---|---|---|---|\n")
	for _, c := range cases {
		r, err := measure(binary, c)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		line := fmt.Sprintf("| %s | %d | %d / %d | %.1f s | %.0f MiB |\n", c.name, c.records, r.answered, r.poisoned, r.took.Seconds(), float64(r.peakRSS)/(1<<20))
		fmt.Fprint(os.Stderr, line)
		table.WriteString(line)
	}
	if out == "" {
		fmt.Print(table.String())
		return nil
	}
	return writeBlock(out, table.String())
}

func measure(binary string, c hostileCase) (result, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(c.partitions), servicetest.Topics.All()...))
	if err != nil {
		return result{}, err
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ManualFlushing(), kgo.ProducerBatchCompression(c.codec),
		kgo.ProducerBatchMaxBytes(1<<30), kgo.BrokerMaxWriteBytes(1<<30), kgo.MaxBufferedBytes(2<<30))
	if err != nil {
		return result{}, err
	}
	reqs := servicetest.CompressiblePings("hostile", c.records, c.partitions, c.recordBytes)
	if c.keyBytes > 0 {
		for i := range reqs {
			reqs[i].Key = []byte(reqs[i].Tag + strings.Repeat("k", max(0, c.keyBytes-len(reqs[i].Tag))))
		}
	}
	_, err = servicetest.ProduceBatches(ctx, producer, reqs, c.perBatch)
	producer.Close()
	if err != nil {
		return result{}, fmt.Errorf("producing: %w", err)
	}
	reqs = nil

	reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(servicetest.Topics.Succeeded, servicetest.Topics.Failed),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return result{}, err
	}
	defer reader.Close()

	cmd := exec.Command(binary)
	cmd.Env = append(withoutGOMEMLIMIT(os.Environ()), "KAFKA_BROKERS="+strings.Join(brokers, ","), "HTTP_ADDR=127.0.0.1:0", "LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, c.env...)
	logs, err := os.CreateTemp("", "pingpong-memory-*.log")
	if err != nil {
		return result{}, err
	}
	defer os.Remove(logs.Name())
	cmd.Stdout, cmd.Stderr = logs, logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()

	var r result
	for r.answered+r.poisoned < c.records {
		select {
		case err := <-exited:
			exited <- err
			tail, _ := os.ReadFile(logs.Name())
			return r, fmt.Errorf("the service exited (%v) after %d answers:\n%s", err, r.answered+r.poisoned, lastLines(string(tail), 20))
		default:
		}
		pollCtx, pollCancel := context.WithTimeout(ctx, time.Second)
		fetches := reader.PollFetches(pollCtx)
		pollCancel()
		if ctx.Err() != nil {
			return r, errors.New("timed out")
		}
		fetches.EachRecord(func(rec *kgo.Record) {
			if rec.Topic == servicetest.Topics.Succeeded {
				r.answered++
				return
			}
			// A poison record stands for one request, or for a whole batch: count what it covers.
			var first, last int64 = 0, -1
			for _, h := range rec.Headers {
				switch h.Key {
				case "pingpong_source_offset":
					fmt.Sscan(string(h.Value), &first)
				case "pingpong_source_last_offset":
					fmt.Sscan(string(h.Value), &last)
				}
			}
			if last >= first {
				r.poisoned += int(last-first) + 1
			} else {
				r.poisoned++
			}
		})
	}
	r.took = time.Since(start)
	r.peakRSS = procfs.PeakRSS(cmd.Process.Pid)
	return r, nil
}

func withoutGOMEMLIMIT(env []string) []string {
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "KAFKA_BROKERS=") {
			kept = append(kept, kv)
		}
	}
	return kept
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

const (
	blockStart = "<!-- figures: written by go run ./bench/memory -->"
	blockEnd   = "<!-- end of figures: go run ./bench/memory -->"
)

// writeBlock replaces the figures block of path with table, or appends one.
func writeBlock(path, table string) error {
	doc, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return err
	}
	text := string(doc)
	block := blockStart + "\n" + table + blockEnd
	start, end := strings.Index(text, blockStart), strings.Index(text, blockEnd)
	if start < 0 || end < start {
		text = strings.TrimRight(text, "\n") + "\n\n" + block + "\n"
	} else {
		text = text[:start] + block + text[end+len(blockEnd):]
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
