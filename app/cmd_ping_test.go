package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
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

// TestREADMEPoisonQueueExampleIsTrue holds the README's worked example to the binary's real
// output on the default transport: the positions, codes and sources of `dlq list`, and the
// header values of `dlq show 0:0` that do not change from run to run (not times nor ids).
func TestREADMEPoisonQueueExampleIsTrue(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := func(text, command string) string {
		t.Helper()
		_, after, ok := strings.Cut(text, "$ "+command+"\n")
		if !ok {
			t.Fatalf("no `%s` in the text", command)
		}
		out, _, _ := strings.Cut(after, "```")
		out, _, _ = strings.Cut(out, "\n$ ")
		return out
	}
	// The stable part: list's AT, CODE, ATTEMPTS, REPLAYS and SOURCE; show's stable headers.
	listRow := regexp.MustCompile(`(?m)^\S+\s+(\d+:\d+)\s+\S+\s+(\S+)\s+(\d+)\s+(\d+)\s+(\S+)`)
	stable := func(list, show string) []string {
		var got []string
		for _, m := range listRow.FindAllStringSubmatch(list, -1) {
			got = append(got, strings.Join(m[1:], " "))
		}
		for _, key := range []string{"handler_poisoned", "pingpong_attempts", "pingpong_reason_code", "pingpong_source_offset",
			"pingpong_source_partition", "reason_poisoned", "subscriber_poisoned", "topic_poisoned"} {
			m := regexp.MustCompile(`(?m)^  ` + key + `:\s+(.*)$`).FindStringSubmatch(show)
			if m == nil {
				got = append(got, key+"=(absent)")
				continue
			}
			got = append(got, key+"="+m[1])
		}
		return got
	}
	want := stable(block(string(readme), "go run ./app dlq list"), block(string(readme), "go run ./app dlq show 0:0"))
	if len(want) != 2+8 || strings.Contains(strings.Join(want, "\n"), "=(absent)") {
		t.Fatalf("the README's example is not two poison records and a record in full:\n%s", strings.Join(want, "\n"))
	}

	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	env := append(serviceEnv(brokers), "TOPIC_PARTITIONS=1")
	// The example's topics have one partition each, as `TOPIC_PARTITIONS=1 go run ./app` makes them.
	mustRun(t, env, "topics", "create", "--topic-partitions", "1", "--topic-replication-factor", "1", "--topic-min-insync-replicas", "1")
	p := startBinary(t, env)
	defer p.Signal(t, syscall.SIGTERM, 20*time.Second)
	mustRun(t, env, "ping", "--count", "3", "--malformed", "2", "--timeout", "30s")
	// The two rejections are answered concurrently (they have no transaction id in common), so
	// which of them is at failed:0:0 varies from run to run: the rows are compared by code, and
	// the record shown is the one with the code the README shows.
	list := mustRun(t, env, "dlq", "list")
	readmeCode := strings.Fields(want[0])[1]
	at := ""
	for _, m := range listRow.FindAllStringSubmatch(list, -1) {
		if m[2] == readmeCode {
			at = m[1]
		}
	}
	got := stable(list, mustRun(t, env, "dlq", "show", at))
	byCode := func(rows []string) []string {
		out := slices.Clone(rows)
		for i := range out[:2] {
			out[i] = strings.SplitN(out[i], " ", 2)[1] // without the position
		}
		slices.Sort(out[:2])
		return out
	}
	if strings.Join(byCode(got), "\n") != strings.Join(byCode(want), "\n") {
		t.Errorf("the README's example says\n%s\nthe binary says\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	positions := []string{strings.Fields(got[0])[0], strings.Fields(got[1])[0]}
	slices.Sort(positions)
	if strings.Join(positions, " ") != "0:0 0:1" {
		t.Errorf("the poison records are at %v, not 0:0 and 0:1 as the README says", positions)
	}
}
