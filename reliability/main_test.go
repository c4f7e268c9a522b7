package reliability_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pingpong/pingpong/app/servicetest"
)

// binary is the pingpong binary, built once, for the scenarios that kill the process.
var binary string

func TestMain(m *testing.M) {
	var remove func()
	var err error
	if binary, remove, err = servicetest.BuildBinary("../app", ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	remove()
	os.Exit(code)
}

// startBinary runs the built binary on brokers.
func startBinary(t *testing.T, brokers []string) *servicetest.Process {
	t.Helper()
	return startBinaryWith(t, brokers)
}

// startBinaryWith runs the built binary on brokers with more settings (NAME=value).
// RELIABILITY_DELIVERY=exactly-once runs it in exactly-once mode (unless it is asked for the
// watermill-kafka transport, which has none), as serviceConfig does the service in process, each
// binary with its own transactional id.
func startBinaryWith(t *testing.T, brokers []string, env ...string) *servicetest.Process {
	t.Helper()
	settings := []string{
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
	}
	if mode, ok := os.LookupEnv("RELIABILITY_DELIVERY"); ok && !slices.Contains(env, "KAFKA_TRANSPORT=watermill-kafka") {
		settings = append(settings, "KAFKA_DELIVERY="+mode, fmt.Sprintf("KAFKA_TRANSACTIONAL_ID=reliability-%d", instances.Add(1)))
	}
	return servicetest.StartBinary(t, binary, append(settings, env...))
}
