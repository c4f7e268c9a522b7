package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Every value here was once accepted, wrapped, or panicked at start-up (issue 13). The built
// binary must stop with exit code 2 and a message naming the setting, and never panic. The
// environment is the test's own, not the caller's.
func TestOutOfRangeSettingsExitTwoNamingTheSetting(t *testing.T) {
	for _, tc := range []struct {
		env   []string
		names []string // what stderr must name
	}{
		{[]string{"KAFKA_PRODUCER_BATCH_BYTES=200000000"}, []string{"KAFKA_PRODUCER_BATCH_BYTES"}},
		{[]string{"KAFKA_PRODUCER_BATCH_BYTES=2147483648"}, []string{"KAFKA_PRODUCER_BATCH_BYTES"}},
		{[]string{"TOPIC_PARTITIONS=4294967297"}, []string{"TOPIC_PARTITIONS"}},
		{[]string{"TOPIC_PARTITIONS=2147483648"}, []string{"TOPIC_PARTITIONS"}},
		{[]string{"TOPIC_PARTITIONS=99999999999999999999"}, []string{"TOPIC_PARTITIONS"}},
		{[]string{"KAFKA_PARTITION_WINDOW=1000000"}, []string{"KAFKA_PARTITION_WINDOW"}},
		{[]string{"RETRY_MULTIPLIER=NaN"}, []string{"RETRY_MULTIPLIER"}},
		{[]string{"RETRY_MULTIPLIER=+Inf"}, []string{"RETRY_MULTIPLIER"}},
		{[]string{"RETRY_JITTER=NaN"}, []string{"RETRY_JITTER"}},
		{[]string{"RETRY_MAX_ELAPSED=9999999999h"}, []string{"RETRY_MAX_ELAPSED"}},
		{[]string{"TOPIC_MIN_INSYNC_REPLICAS=4294967297"}, []string{"TOPIC_MIN_INSYNC_REPLICAS"}},
		// A request of MAX_REQUEST_BYTES could not be answered: both settings are named.
		{[]string{"MAX_REQUEST_BYTES=1048576"}, []string{"MAX_REQUEST_BYTES", "KAFKA_PRODUCER_BATCH_BYTES"}},
		{[]string{"KAFKA_PRODUCER_BATCH_BYTES=1024"}, []string{"MAX_REQUEST_BYTES", "KAFKA_PRODUCER_BATCH_BYTES"}},
		// Exactly-once is the franz-go transport's: both settings are named.
		{[]string{"KAFKA_DELIVERY=exactly-once", "KAFKA_TRANSPORT=watermill-kafka"}, []string{"KAFKA_DELIVERY", "KAFKA_TRANSPORT"}},
		{[]string{"KAFKA_DELIVERY=exactly_once"}, []string{"KAFKA_DELIVERY"}},
		{[]string{"KAFKA_TRANSACTION_TIMEOUT=99999h"}, []string{"KAFKA_TRANSACTION_TIMEOUT"}},
		{[]string{"KAFKA_TRANSACTION_INTERVAL=6s"}, []string{"KAFKA_TRANSACTION_INTERVAL", "KAFKA_TRANSACTION_TIMEOUT"}},
		{[]string{"KAFKA_TRANSACTION_MAX_REQUESTS=0"}, []string{"KAFKA_TRANSACTION_MAX_REQUESTS"}},
		{[]string{"KAFKA_TRANSACTIONAL_ID=" + strings.Repeat("x", 250)}, []string{"KAFKA_TRANSACTIONAL_ID"}},
	} {
		t.Run(strings.Join(tc.env, " "), func(t *testing.T) {
			stopsNamingTheSettings(t, tc.env, tc.names)
		})
	}
}

// stopsNamingTheSettings runs the binary with args and env and checks that it exits 2, naming
// each of names on stderr, without a panic.
func stopsNamingTheSettings(t *testing.T, env, names []string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	// Were the value accepted, the service would fail to reach this broker, not hang.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HTTP_ADDR=127.0.0.1:0",
		"KAFKA_BROKERS=127.0.0.1:1", "KAFKA_TIMEOUT=1s"}, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("want exit code 2, got %v; stderr %q", err, stderr.String())
	}
	for _, name := range names {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("stderr does not name %s: %q", name, stderr.String())
		}
	}
	for _, out := range []string{stdout.String(), stderr.String()} {
		if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
			t.Errorf("the output shows a panic: %q", out)
		}
	}
}
