package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

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
