package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
)

// binary is the pingpong binary, built once for the tests that run it as an operator would.
var binary string

func TestMain(m *testing.M) {
	// The built binary's tools look for the embedded broker at a free port of the tests' own
	// rather than at 9092, where a developer's `go run ./app` may be running.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	devBroker = l.Addr().String()
	l.Close()
	var remove func()
	binary, remove, err = servicetest.BuildBinary(".",
		"-X github.com/pingpong/pingpong/app/buildinfo.Version=v9.9.9-test -X github.com/pingpong/pingpong/app/buildinfo.Commit=abc1234"+
			" -X main.devBroker="+devBroker)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	remove()
	os.Exit(code)
}

// startBinary runs the built binary with env added to the environment.
func startBinary(t *testing.T, env []string, args ...string) *servicetest.Process {
	t.Helper()
	return servicetest.StartBinary(t, binary, env, args...)
}

func serviceEnv(brokers []string) []string {
	return []string{
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
		"SHUTDOWN_TIMEOUT=10s",
	}
}

func TestBinaryDrainsAPreloadedBacklog(t *testing.T) {
	const n = 10_000
	cluster := servicetest.Cluster(t, 4)
	brokers := cluster.ListenAddrs()
	reqs := servicetest.Mix("backlog", n, 4)
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs)

	start := time.Now()
	p := startBinary(t, serviceEnv(brokers))
	tally := servicetest.NewReader(t, brokers).Await(t, reqs, 3*time.Minute)
	elapsed := time.Since(start)
	t.Logf("%s in %v (%.0f requests/s, binary start included)", tally, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%s\nmissing %v\nwrong %v", tally, first(tally.Missing), first(tally.Wrong))
	}
	if code := p.Signal(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

func TestSIGTERMDuringLoadLosesNothing(t *testing.T) {
	const n = 4_000
	cluster := servicetest.Cluster(t, 4)
	brokers := cluster.ListenAddrs()
	reqs := servicetest.Mix("sigterm", n, 4)
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs)
	reader := servicetest.NewReader(t, brokers)

	firstRun := startBinary(t, serviceEnv(brokers))
	// Stop it in the middle of the backlog.
	deadline := time.Now().Add(time.Minute)
	for tally := reader.Await(t, reqs, 50*time.Millisecond); tally.Answered < n/4; tally = reader.Await(t, reqs, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %s", tally)
		}
	}
	stopped := time.Now()
	if code := firstRun.Signal(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	t.Logf("stopped in %v", time.Since(stopped).Round(time.Millisecond))
	if !strings.Contains(firstRun.Output.String(), "Stopped cleanly") {
		t.Errorf("no clean stop in the logs")
	}
	midway := servicetest.Check(reqs, reader.Answers())
	if midway.Answered == n {
		t.Fatalf("the backlog was drained before SIGTERM; the test proves nothing: %s", midway)
	}

	secondRun := startBinary(t, serviceEnv(brokers))
	tally := reader.Await(t, reqs, 2*time.Minute)
	t.Logf("answered before SIGTERM: %d; after the restart: %s", midway.Answered, tally)
	if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%s\nmissing %v\nwrong %v", tally, first(tally.Missing), first(tally.Wrong))
	}
	if code := secondRun.Signal(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestBadConfigurationStopsWithTheSettingNamed(t *testing.T) {
	for _, tc := range []struct {
		env, says string
		args      []string
	}{
		{"KAFKA_CONSUMER_OFFSET=newest", "invalid KAFKA_CONSUMER_OFFSET (--kafka-consumer-offset) \"newest\": must be earliest or latest", nil},
		{"SHUTDOWN_TIMEOUT=later", "invalid SHUTDOWN_TIMEOUT (--shutdown-timeout)", nil},
		{"", "unknown flag: --no-such-flag", []string{"--no-such-flag"}},
		// OpenTelemetry's variables have no flag; the SDK would ignore a bad one with a default.
		{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1 OTEL_TRACES_SAMPLER=sometimes", "invalid OTEL_TRACES_SAMPLER \"sometimes\": must be", nil},
		{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1 OTEL_EXPORTER_OTLP_PROTOCOL=http/json", "invalid OTEL_EXPORTER_OTLP_PROTOCOL \"http/json\": must be http/protobuf or grpc", nil},
	} {
		cmd := exec.Command(binary, tc.args...)
		cmd.Env = append(servicetest.Environ(), strings.Fields(tc.env)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%s %v: want exit code 2, got %v", tc.env, tc.args, err)
		}
		if !strings.Contains(string(out), tc.says) {
			t.Errorf("%s %v: output %q does not say %q", tc.env, tc.args, out, tc.says)
		}
	}
}

func TestVersionIsStamped(t *testing.T) {
	out, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "pingpong v9.9.9-test (commit abc1234, go") {
		t.Errorf("version %q", out)
	}
}

// TestEmbeddedBrokerAnswersKcat is the README's quick start: the binary with no Kafka
// configuration at all, and the commands its log suggests, copied from a log that goes to a pipe
// (so, in logrus's text format, quoted): kcat, an independent client, and `pingpong ping`.
// Both ports are picked free, so that it passes beside a running `go run ./app`.
func TestEmbeddedBrokerAnswersKcat(t *testing.T) {
	kcat := servicetest.RequireTool(t, "kcat", "apt-get install kcat")
	p := startBinary(t, []string{"EMBEDDED_BROKER_PORT=0", "HTTP_ADDR=127.0.0.1:0"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := awaitReady(t, p.Output.String, func() bool { _, exited := p.Exited(); return exited }, time.Minute)
	httpURL := readyLine.FindStringSubmatch(log)[1]
	if resp, err := http.Get(httpURL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s/healthz, the Ready line's address: %v %v", httpURL, resp, err)
	}
	hints := map[string]string{}
	for _, m := range logHint.FindAllStringSubmatch(log, -1) {
		if strings.Contains(m[2], `\`) {
			t.Errorf("the hint %q is escaped: copied, it is not the command", m[2])
		}
		hints[m[1]] = m[2]
	}
	broker := regexp.MustCompile(`broker="([^"]+)"`).FindStringSubmatch(log)[1]
	shell := func(command string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "sh", "-c", command)
		cmd.Env = servicetest.Environ()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v %s", command, err, out)
		}
		return string(out)
	}
	// kcat -C -e, as the hints have it, reads what is there and exits: read until the answer is.
	await := func(command, want string) {
		t.Helper()
		got := ""
		for ctx.Err() == nil {
			if got = strings.TrimSpace(shell(command + " -q")); strings.Contains(got, want) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("%q read %q, want %q", command, got, want)
	}

	produce := exec.CommandContext(ctx, kcat, "-P", "-b", broker, "-t", "dev.pingpong.requested", "-k", "kcat-1")
	produce.Stdin = strings.NewReader(`{"transaction-id": "kcat-1", "payload": {"message": "ping"}}` + "\n" +
		`{"transaction-id": "kcat-2", "payload": {"message": "pong"}}` + "\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v %s", err, out)
	}
	await(hints["Read the pongs"], `kcat-1 {"transaction-id": "kcat-1", "payload": {"message": "pong"}}`)
	await(hints["Read the poison queue"], `kcat-2 {"transaction-id": "kcat-2", "payload": {"message": "Error the message doesn't contain 'ping'"}}`)
	ping := strings.Replace(hints["Send pings, and bad requests, and wait for their answers"], "go run ./app", binary, 1)
	if out := shell(ping); !strings.Contains(out, "sent 5, answered 5, unanswered 0, unexpected 0") {
		t.Errorf("%s:\n%s", ping, out)
	}
	if code := p.Signal(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func first(s []string) []string { return s[:min(len(s), 10)] }

func TestTopicsCreateIsIdempotent(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	env := append(servicetest.Environ(), "KAFKA_BROKERS="+strings.Join(cluster.ListenAddrs(), ","), "TOPIC_PREFIX=prod.pp")
	create := func() string {
		cmd := exec.Command(binary, "topics", "create", "--topic-partitions", "6", "--topic-min-insync-replicas", "1")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("topics create: %v\n%s", err, out)
		}
		return string(out)
	}
	first := create()
	for _, topic := range []string{"prod.pp.requested", "prod.pp.succeeded", "prod.pp.failed"} {
		if !regexp.MustCompile(topic + `\s+created\s+6`).MatchString(first) {
			t.Errorf("first run does not report %s created with 6 partitions:\n%s", topic, first)
		}
	}
	second := create()
	if strings.Contains(second, "created") || strings.Count(second, "exists") != 3 {
		t.Errorf("second run changes nothing and says so:\n%s", second)
	}

	// An independent admin client sees the topics as asked.
	adm := kadm.NewClient(servicetest.Client(t, cluster.ListenAddrs()))
	details, err := adm.ListTopics(context.Background(), "prod.pp.requested")
	if err != nil || len(details["prod.pp.requested"].Partitions) != 6 {
		t.Errorf("prod.pp.requested: %v partitions, err %v", len(details["prod.pp.requested"].Partitions), err)
	}
	configs, err := adm.DescribeTopicConfigs(context.Background(), "prod.pp.failed")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := configs.On("prod.pp.failed", nil); err != nil || !hasConfig(c.Configs, "min.insync.replicas", "1") {
		t.Errorf("min.insync.replicas of prod.pp.failed: %+v %v", c.Configs, err)
	}

}

func hasConfig(configs []kadm.Config, key, value string) bool {
	for _, c := range configs {
		if c.Key == key && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}
