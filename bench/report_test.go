package main

import (
	"github.com/twmb/franz-go/pkg/kmsg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteFiguresReplacesOnlyItsBlock: a run rewrites the figures of its produce latency and
// leaves the prose and the other run's figures as they are.
func TestWriteFiguresReplacesOnlyItsBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	if err := os.WriteFile(path, []byte("# Performance\n\nprose\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		latency time.Duration
		figures string
	}{{0, "fast v1\n"}, {2 * time.Millisecond, "slow v1\n"}, {0, "fast v2\n"}} {
		if err := writeFigures(path, step.latency, step.figures); err != nil {
			t.Fatal(err)
		}
	}
	doc, _ := os.ReadFile(path)
	text := string(doc)
	for _, want := range []string{"prose", "fast v2", "slow v1"} {
		if !strings.Contains(text, want) {
			t.Errorf("%q is missing:\n%s", want, text)
		}
	}
	if strings.Contains(text, "fast v1") || strings.Count(text, "written by go run ./bench") != 2 {
		t.Errorf("the first block was not replaced in place:\n%s", text)
	}
}

func TestSummarizeTakesTheMedianAndKeepsEveryLoss(t *testing.T) {
	got := summarize([]result{
		{system: "service", partitions: 4, perSecond: 50_000, peakRSS: 40 << 20},
		{system: "service", partitions: 4, perSecond: 10_000, peakRSS: 44 << 20, dups: 2},
		{system: "service", partitions: 4, perSecond: 52_000, peakRSS: 41 << 20, lost: 1, wrong: 3},
	})
	if got.perSecond != 50_000 || got.peakRSS != 44<<20 || got.lost != 1 || got.dups != 2 || got.wrong != 3 || got.runs != 3 {
		t.Errorf("summary %+v: want the median 50000/s, the highest RSS, and every loss, duplicate and wrong answer", got)
	}
	if even := summarize([]result{{perSecond: 10}, {perSecond: 20}}); even.perSecond != 15 {
		t.Errorf("median of two drains %v, want 15", even.perSecond)
	}
}

func TestOnlyTheSystemsWritesAreDelayed(t *testing.T) {
	request := func(topics ...string) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		for _, topic := range topics {
			req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: topic})
		}
		return req
	}
	if !writesRequestsOnly(request("bench1.requested")) {
		t.Error("the load generator's write would be delayed")
	}
	for _, req := range []*kmsg.ProduceRequest{request("bench1.succeeded"), request("bench1.failed", "bench1.requested"), request()} {
		if writesRequestsOnly(req) {
			t.Errorf("a write of the system under test (%v) would not be delayed", req.Topics)
		}
	}
}
