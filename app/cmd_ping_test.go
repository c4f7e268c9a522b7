package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

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

// TestPingStopsOnCtrlCWithASummary: Ctrl-C in the middle of a long run stops ping at once; it
// says it was interrupted, counts the answers that came before (read while it was still sending),
// names no request as unanswered, and exits 130. An independent client counts what it sent.
func TestPingStopsOnCtrlCWithASummary(t *testing.T) {
	const total = 200_000
	cluster := servicetest.Cluster(t, 4)
	brokers := cluster.ListenAddrs()
	servicetest.Start(t, servicetest.Config(t, brokers))
	adm := kadm.NewClient(servicetest.Client(t, brokers))

	cmd := exec.Command(binary, "ping", "--count", strconv.Itoa(total), "--timeout", "5m")
	cmd.Env = append(servicetest.Environ(), toolEnv(brokers)...)
	lines, stderr := startReadingLines(t, cmd, 1024)
	answer := regexp.MustCompile(`^ping-[0-9a-f]{6}-\d+ +pong `)
	var out []string
	answers := 0
	for answers < 100 {
		line, ok := <-lines
		if !ok {
			t.Fatalf("ping ended before its 100th answer:\n%s\n%s", strings.Join(out, "\n"), stderr.String())
		}
		out = append(out, line)
		if answer.MatchString(line) {
			answers++
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	requestedAtCtrlC := endOffset(t, adm, servicetest.Topics.Requested)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for line := range lines {
			out = append(out, line)
			if answer.MatchString(line) {
				answers++
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("ping still runs 30s after Ctrl-C")
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("ping after Ctrl-C: %v, want exit code 130", err)
	}
	t.Logf("Ctrl-C after %d answers, with %d of %d requests on %s", 100, requestedAtCtrlC, total, servicetest.Topics.Requested)

	last := out[len(out)-1]
	if strings.HasPrefix(last, "round trip: ") {
		last = out[len(out)-2]
	}
	summary := regexp.MustCompile(`^interrupted: sent (\d+), answered (\d+), unanswered (\d+), unexpected 0, not sent (\d+)$`)
	m := summary.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("no summary of an interrupted run; the output ends with:\n%s", strings.Join(out[max(0, len(out)-5):], "\n"))
	}
	n := func(s string) int { i, _ := strconv.Atoi(s); return i }
	sent, answered, unanswered, notSent := n(m[1]), n(m[2]), n(m[3]), n(m[4])
	if answered != answers || sent != answered+unanswered || sent+notSent != total || answered == total {
		t.Errorf("summary %q: %d answer lines printed, %d requests in all", last, answers, total)
	}
	// What it says it sent is what Kafka holds (the service's answers would not change that).
	if requested := endOffset(t, adm, servicetest.Topics.Requested); requested != int64(sent) {
		t.Errorf("ping says it sent %d; %s holds %d", sent, servicetest.Topics.Requested, requested)
	}
	for _, line := range out {
		if strings.Contains(line, "no answer within") || strings.Contains(line, "not sent:") {
			t.Errorf("a request named as failed after Ctrl-C: %q", line)
			break
		}
	}
	// docs/operators.md shows such a summary.
	doc := regexp.MustCompile("`(interrupted: [^`]*)`").FindStringSubmatch(operatorsDocBlock(t, "## `pingpong ping`", "Ctrl-C"))
	if doc == nil || !summary.MatchString(doc[1]) {
		t.Errorf("docs/operators.md's ping section shows no summary of an interrupted run like the binary's: %v", doc)
	}
	want := fmt.Sprintf("pingpong: interrupted: %d of %d request(s) answered, %d sent and not answered yet, %d not sent\n", answered, total, unanswered, notSent)
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}
