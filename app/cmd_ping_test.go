package main

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/servicetest"
)

// TestKcatRequestsShowInDLQListAndPingIsAnswered drives the binary against records written by
// kcat, an independent client: a malformed request shows in `dlq list`, and `ping` gets its
// answers from the running service.
func TestKcatRequestsShowInDLQListAndPingIsAnswered(t *testing.T) {
	kcat := servicetest.RequireTool(t, "kcat", "apt-get install kcat")
	cluster := servicetest.Cluster(t, 4)
	brokers := cluster.ListenAddrs()
	servicetest.Start(t, servicetest.Config(t, brokers))
	env := toolEnv(brokers)

	line := "kcat says hello " + time.Now().Format(time.RFC3339Nano)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := exec.CommandContext(ctx, kcat, "-P", "-b", brokers[0], "-t", servicetest.Topics.Requested)
	produce.Stdin = strings.NewReader(line + "\n")
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v %s", err, out)
	}
	for {
		out := mustRun(t, env, "dlq", "list", "--output", "json", "--reason", "malformed")
		if strings.Contains(out, `"original":"`+line+`","original_encoding":"utf-8"`) {
			if !strings.Contains(out, `"reason":"the request is not JSON`) || !strings.Contains(out, `"source_topic":"dev.pingpong.requested"`) {
				t.Errorf("dlq list shows the kcat request without its reason or source:\n%s", out)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the request kcat wrote is not in dlq list:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	r := runTool(t, env, nil, "ping", "--count", "3", "--malformed", "2", "--timeout", "20s")
	if r.code != 0 || !strings.Contains(r.stdout, "sent 5, answered 5, unanswered 0, unexpected 0\n") {
		t.Fatalf("ping: %s", r)
	}
	for _, pattern := range []string{
		`(?m)^ping-[0-9a-f]{6}-1 +pong +[0-9.]+[µm]?s +dev\.pingpong\.succeeded:\d:\d+$`,
		`(?m)^malformed-[0-9a-f]{6}-1 +malformed +[0-9.]+[µm]?s +dev\.pingpong\.failed:\d:\d+$`,
		`(?m)^pang-[0-9a-f]{6}-2 +not_ping +[0-9.]+[µm]?s +dev\.pingpong\.failed:\d:\d+$`,
		`(?m)^round trip: min \S+, p50 \S+, p99 \S+, max \S+$`,
	} {
		if !regexp.MustCompile(pattern).MatchString(r.stdout) {
			t.Errorf("ping output has no line like %s:\n%s", pattern, r.stdout)
		}
	}

	// kcat reads what ping sent: the requests really went through Kafka.
	consume := exec.CommandContext(ctx, kcat, "-C", "-b", brokers[0], "-t", servicetest.Topics.Requested, "-o", "beginning", "-e", "-q", "-f", "%s\n")
	out, err := consume.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -C: %v %s", err, out)
	}
	if n := strings.Count(string(out), `"payload": {"message": "ping"}}`); n != 3 {
		t.Errorf("kcat reads %d pings on .requested, want 3:\n%s", n, out)
	}
}

// TestPingReportsUnansweredRequests: with no service running nothing answers, and ping says so
// with exit code 1 once --timeout has passed.
func TestPingReportsUnansweredRequests(t *testing.T) {
	cluster := servicetest.Cluster(t, 2)
	r := runTool(t, toolEnv(cluster.ListenAddrs()), nil, "ping", "--count", "2", "--malformed", "1", "--timeout", "1s")
	if r.code != 1 {
		t.Fatalf("want exit code 1: %s", r)
	}
	for _, want := range []string{
		"sent 3, answered 0, unanswered 3, unexpected 0\n",
		"-1: no answer within 1s\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ping does not say %q: %s", want, r)
		}
	}
	if !strings.Contains(r.stderr, "pingpong: 3 of 3 request(s) did not get the answer they must get within 1s") {
		t.Errorf("ping's error: %s", r)
	}
}

// TestHelpReadsOnAScreen: every command's --help fits in 100 columns, shows the defaults a zero
// hides, and says of --kafka-brokers what it means for the tools too.
func TestHelpReadsOnAScreen(t *testing.T) {
	for _, args := range [][]string{{}, {"ping"}, {"dlq"}, {"dlq", "list"}, {"dlq", "show"}, {"dlq", "stats"},
		{"dlq", "replay"}, {"topics", "create"}, {"version"}, {"healthcheck"}} {
		help := mustRun(t, nil, append(args, "--help")...)
		for _, line := range strings.Split(help, "\n") {
			if len(line) > 100 {
				t.Errorf("pingpong %s --help: a line of %d characters: %q", strings.Join(args, " "), len(line), line)
			}
		}
		if strings.Contains(help, "unset runs an embedded") {
			t.Errorf("pingpong %s --help says the tools run an embedded broker:\n%s", strings.Join(args, " "), help)
		}
	}
	if help := mustRun(t, nil, "--help"); !regexp.MustCompile(`--kafka-producer-linger duration(.|\n)*?\(default 0s\)\n +--kafka-`).MatchString(help) {
		t.Errorf("--help does not show KAFKA_PRODUCER_LINGER's default:\n%s", help)
	}
}
