package main

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pingpong/pingpong/app/servicetest"
)

// The tests of this file do what a new user does in the first hour, as the README's quick start
// and shortest path say it.

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
