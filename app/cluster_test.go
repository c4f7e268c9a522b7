package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/servicetest"
)

// TestBatchBytesAboveTheAnswerTopicsLimitStopsAtStartUp: the answer topics allow 512 KiB
// records (max.message.bytes) and KAFKA_PRODUCER_BATCH_BYTES is left at its 1,000,012 bytes; the
// binary exits 2 naming both settings, before it answers anything the broker would refuse. With
// the batch within the limit it starts.
func TestBatchBytesAboveTheAnswerTopicsLimitStopsAtStartUp(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, servicetest.Topics.Requested))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	limit := "524288"
	adm := kadm.NewClient(servicetest.Client(t, brokers))
	for _, topic := range []string{servicetest.Topics.Succeeded, servicetest.Topics.Failed} {
		if _, err := adm.CreateTopic(context.Background(), 4, 1, map[string]*string{"max.message.bytes": &limit}, topic); err != nil {
			t.Fatal(err)
		}
	}

	// Bounded: a binary that accepts the setting runs until killed.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary)
	cmd.Env = append(servicetest.Environ(), serviceEnv(brokers)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("want exit code 2, got %v", err)
	}
	says := `invalid KAFKA_PRODUCER_BATCH_BYTES (--kafka-producer-batch-bytes) "1000012": must be at most max.message.bytes of dev.pingpong.`
	if !strings.Contains(string(out), says) || !strings.Contains(string(out), "(524288)") {
		t.Errorf("output %q does not say %q ... (524288)", out, says)
	}

	p := startBinary(t, append(serviceEnv(brokers), "KAFKA_PRODUCER_BATCH_BYTES=524288", "MAX_REQUEST_BYTES=262144"))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.Output.String(), "Ready: answering requests") {
		if err, exited := p.Exited(); exited || time.Now().After(deadline) {
			t.Fatalf("with the batch within the limit: not ready (exited: %v %v)", exited, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestShutdownPastItsTimeoutExitsZeroAndLosesNothing: SIGTERM while an answer's write is held by
// the broker longer than SHUTDOWN_TIMEOUT. The stop takes SHUTDOWN_TIMEOUT and a little more,
// says the requests in flight are left uncommitted, and exits 0 (a requested stop); after a
// restart every request is answered.
func TestShutdownPastItsTimeoutExitsZeroAndLosesNothing(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	var holding atomic.Bool
	held := make(chan struct{}, 1)
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		produce := req.(*kmsg.ProduceRequest)
		if holding.Load() && len(produce.Topics) > 0 && produce.Topics[0].Topic != servicetest.Topics.Requested {
			select {
			case held <- struct{}{}:
			default:
			}
			cluster.SleepControl(func() { time.Sleep(4 * time.Second) })
		}
		return nil, nil, false
	})
	reqs := servicetest.Mix("slowstop", 10, 1)
	env := append(serviceEnv(brokers), "SHUTDOWN_TIMEOUT=1s")

	servicetest.Produce(t, servicetest.Client(t, brokers), reqs)
	holding.Store(true)
	first := startBinary(t, env)
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("no answer was written")
	}
	stopping := time.Now()
	code := first.Signal(t, syscall.SIGTERM, 20*time.Second)
	t.Logf("stopped in %v with exit code %d", time.Since(stopping).Round(10*time.Millisecond), code)
	if code != 0 {
		t.Errorf("exit code %d after a shutdown past SHUTDOWN_TIMEOUT, want 0", code)
	}
	if !strings.Contains(first.Output.String(), "Shutdown ran past SHUTDOWN_TIMEOUT") {
		t.Error("the log does not say the shutdown ran past SHUTDOWN_TIMEOUT")
	}

	holding.Store(false)
	second := startBinary(t, env)
	tally := servicetest.NewReader(t, brokers).Await(t, reqs, 30*time.Second)
	t.Logf("after the restart: %s", tally)
	if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%s\nmissing %v\nwrong %v", tally, tally.Missing, tally.Wrong)
	}
	if code := second.Signal(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after a clean stop, want 0", code)
	}
}
