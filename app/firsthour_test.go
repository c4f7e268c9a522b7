package main

import (
	"context"
	"errors"
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

// The tests of this file do what a new user does in the first hour, as the README's quick start
// and shortest path say it.

// operatorsDocBlock is the first code block that opens with fence after heading in
// docs/operators.md.
func operatorsDocBlock(t *testing.T, heading, fence string) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/operators.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/operators.md has no %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, fence)
	if !ok {
		t.Fatalf("docs/operators.md's %q has no %q block", heading, fence)
	}
	block, _, _ = strings.Cut(block, "```")
	return block
}

// readyLine is the service's Ready log line, in logrus's text format, with its HTTP address.
var readyLine = regexp.MustCompile(`msg="Ready: [^"]*" http="(http://[^"]+)"`)

// awaitReady waits until output shows the Ready line and returns the output so far; it fails the
// test if exited reports an exit first, or after timeout.
func awaitReady(t *testing.T, output func() string, exited func() bool, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !readyLine.MatchString(output()) {
		if exited() {
			t.Fatalf("the service exited before it was ready:\n%s", output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Ready line within %v:\n%s", timeout, output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return output()
}

// TestCtrlCStopsTheServiceCleanly is step 5 of the shortest path: Ctrl-C, which a terminal sends
// as SIGINT to the whole foreground process group. The binary finishes what is in flight and
// exits 0; `go run ./app` exits 1 all the same, as the README says (golang/go#40467: the go
// command sets its own status to 1 when it sees an interrupt, whatever the program's).
func TestCtrlCStopsTheServiceCleanly(t *testing.T) {
	env := []string{"EMBEDDED_BROKER_PORT=0", "HTTP_ADDR=127.0.0.1:0"}
	p := startBinary(t, env)
	awaitReady(t, p.Output.String, func() bool { _, exited := p.Exited(); return exited }, time.Minute)
	if code := p.Signal(t, syscall.SIGINT, 20*time.Second); code != 0 || !strings.Contains(p.Output.String(), `msg="Stopped cleanly"`) {
		t.Errorf("the binary after Ctrl-C: exit code %d, want 0 and \"Stopped cleanly\":\n%s", code, p.Output.String())
	}

	run := exec.Command("go", "run", "./app")
	run.Dir = ".." // the module's root, as in the README
	run.Env = append(servicetest.Environ(), env...)
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's foreground group: go and the service
	var out servicetest.SyncBuffer
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
	})
	exited := func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return false
		}
	}
	awaitReady(t, out.String, exited, 5*time.Minute) // go run compiles first
	if err := syscall.Kill(-run.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !strings.Contains(out.String(), `msg="Stopped cleanly"`) {
			t.Errorf("go run ./app after Ctrl-C: no clean stop in the log:\n%s", out.String())
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("go run ./app after Ctrl-C: %v; the README says exit status 1 (if golang/go#40467 is fixed, make it say 0)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("go run ./app still runs 30s after Ctrl-C:\n%s", out.String())
	}
}

// TestToolsUseTheEmbeddedBrokersAddressWhenKafkaBrokersIsUnset: with KAFKA_BROKERS unset, every
// tool, `topics create` too, goes to the address of `go run ./app`'s embedded broker, as --help
// says; where nothing listens there, each says that the address is only the default and how to
// start a broker there. (The test binary's default is a free port of the test's own: TestMain.)
func TestToolsUseTheEmbeddedBrokersAddressWhenKafkaBrokersIsUnset(t *testing.T) {
	want := "pingpong: no broker listens at " + devBroker + ", the default when KAFKA_BROKERS is unset: " +
		"start the service with `go run ./app` (its embedded broker listens there), or set KAFKA_BROKERS to your cluster's brokers: " +
		"dial tcp " + devBroker + ": connect: connection refused\n"
	// docs/operators.md shows it with the real default.
	if doc := operatorsDocBlock(t, "## Settings shared with the service", "$ pingpong dlq list\n"); doc != strings.ReplaceAll(want, devBroker, "127.0.0.1:9092") {
		t.Errorf("docs/operators.md shows\n%s\nthe binary prints\n%s", doc, want)
	}
	for _, args := range [][]string{{"topics", "create"}, {"dlq", "list"}, {"dlq", "show", "0:0"}, {"ping", "--count", "1"}} {
		if r := runTool(t, nil, nil, args...); r.code != 1 || r.stderr != want {
			t.Errorf("pingpong %s with nothing at %s: want exit code 1 and\n%s\ngot %s", strings.Join(args, " "), devBroker, want, r)
		}
	}

	_, port, _ := strings.Cut(devBroker, ":")
	p := startBinary(t, []string{"EMBEDDED_BROKER_PORT=" + port, "HTTP_ADDR=127.0.0.1:0"})
	awaitReady(t, p.Output.String, func() bool { _, exited := p.Exited(); return exited }, time.Minute)
	if out := mustRun(t, nil, "topics", "create"); strings.Count(out, " exists ") != 3 {
		t.Errorf("topics create on the embedded broker, whose topics exist:\n%s", out)
	}
	if out := mustRun(t, []string{"TOPIC_PREFIX=first.hour"}, "topics", "create"); strings.Count(out, " created ") != 3 {
		t.Errorf("topics create of new topics on the embedded broker:\n%s", out)
	}
	// An independent client finds them on the service's broker.
	details, err := kadm.NewClient(servicetest.Client(t, []string{devBroker})).ListTopics(context.Background(), "first.hour.requested", "first.hour.succeeded", "first.hour.failed")
	if err != nil || len(details) != 3 || details.Error() != nil {
		t.Errorf("the topics topics create made: %v %v", details, err)
	}
	if code := p.Signal(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// logHint is a command the service's log suggests: msg="..." command="...", in logrus's text
// format as it goes to a pipe.
var logHint = regexp.MustCompile(`msg="([^"]*)" command="([^"]*)"`)

// shortestPathCommands are the commands of the README's shortest path: its code spans that run
// the binary, and the lines of its code block, without their comments.
func shortestPathCommands(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## The shortest path through it\n")
	if !ok {
		t.Fatal("the README has no shortest path")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var commands []string
	for _, m := range regexp.MustCompile("`(go run ./app[^`]*)`|(?m)^ +(kcat [^#\n]*?|echo [^#\n]*?) *(?:#.*)?$").FindAllStringSubmatch(section, -1) {
		commands = append(commands, m[1]+m[2])
	}
	return commands
}

// TestShortestPathIsTheREADMEs walks the README's shortest path with the default four partitions:
// the service's log suggests the README's commands, and each works as the README says, `dlq
// show` with any position `dlq list` printed; a position in an empty partition says where the
// records are. (kcat's step: TestEmbeddedBrokerAnswersKcat.)
func TestShortestPathIsTheREADMEs(t *testing.T) {
	readme := shortestPathCommands(t)
	// The hints are steps 2 to 4 but for the request that kcat -P sends, a JSON text whose quotes a
	// log field would escape; ping sends requests instead.
	var want []string
	for _, c := range readme {
		if c != "go run ./app" && !strings.Contains(c, "kcat -P") {
			want = append(want, c)
		}
	}
	if len(want) != 5 {
		t.Fatalf("the README's shortest path has changed: %q", readme)
	}

	_, port, _ := strings.Cut(devBroker, ":")
	p := startBinary(t, []string{"EMBEDDED_BROKER_PORT=" + port, "HTTP_ADDR=127.0.0.1:0"})
	log := awaitReady(t, p.Output.String, func() bool { _, exited := p.Exited(); return exited }, time.Minute)
	var hints []string
	for _, m := range logHint.FindAllStringSubmatch(log, -1) {
		hints = append(hints, strings.ReplaceAll(m[2], devBroker, "127.0.0.1:9092"))
	}
	if !slices.Equal(hints, want) {
		t.Errorf("the log suggests\n%s\nthe README's shortest path says\n%s", strings.Join(hints, "\n"), strings.Join(want, "\n"))
	}

	tool := func(command string) toolResult {
		t.Helper()
		args, ok := strings.CutPrefix(command, "go run ./app ")
		if !ok {
			t.Fatalf("not a tool command: %s", command)
		}
		return runTool(t, nil, nil, strings.Fields(args)...)
	}
	if r := tool(want[0]); r.code != 0 || !strings.Contains(r.stdout, "sent 5, answered 5, unanswered 0, unexpected 0\n") {
		t.Fatalf("%s: %s", want[0], r)
	}
	list := tool(want[1])
	rows := regexp.MustCompile(`(?m)^\S+\s+(\d+):(\d+)\s+\S+\s+(malformed|not_ping)\s`).FindAllStringSubmatch(list.stdout, -1)
	if list.code != 0 || len(rows) != 2 {
		t.Fatalf("%s: want the two bad requests: %s", want[1], list)
	}
	holding := map[string]bool{}
	for _, row := range rows {
		at := row[1] + ":" + row[2]
		holding[row[1]] = true
		show := tool(strings.Replace(want[2], "P:O", at, 1))
		if show.code != 0 || !strings.Contains(show.stdout, "record          dev.pingpong.failed:"+at+"\n") ||
			!strings.Contains(show.stdout, "reason code     "+row[3]+"\n") {
			t.Errorf("dlq show %s, a position dlq list printed: %s", at, show)
		}
	}
	// Two records leave at least two of the four partitions empty.
	for partition := range 4 {
		if holding[strconv.Itoa(partition)] {
			continue
		}
		at := strconv.Itoa(partition) + ":0"
		r := tool(strings.Replace(want[2], "P:O", at, 1))
		if r.code != 1 || !strings.Contains(r.stderr, "partition "+strconv.Itoa(partition)+" of dev.pingpong.failed is empty; records are at ") {
			t.Errorf("dlq show %s, an empty partition: %s", at, r)
		}
		for _, row := range rows {
			if !strings.Contains(r.stderr, row[1]+":"+row[2]) {
				t.Errorf("dlq show %s does not say that a record is at %s:%s: %s", at, row[1], row[2], r.stderr)
			}
		}
	}
	if code := p.Signal(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
