package servicetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/config"
)

// BuildBinary builds the pingpong binary from the app package at appDir into a temporary
// directory, for the tests that run it as an operator would; call it from TestMain, and remove
// returns the directory's removal.
func BuildBinary(appDir string, ldflags string) (path string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "pingpong-bin")
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, "pingpong")
	build := exec.Command("go", "build", "-o", path, "-ldflags", ldflags, appDir)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building the binary: %w", err)
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

// Process is a running pingpong binary.
type Process struct {
	cmd    *exec.Cmd
	Output *SyncBuffer // stdout and stderr
	done   chan error
}

// StartBinary runs binary with args and env added to the environment until it exits or the
// test ends (then it is killed). Its last output lines are shown when the test fails.
func StartBinary(t testing.TB, binary string, env []string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(Environ(), env...)
	p := &Process{cmd: cmd, Output: &SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.Output, p.Output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			lines := strings.Split(p.Output.String(), "\n")
			t.Logf("pingpong output (last lines):\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return p
}

// Send sends sig without waiting for anything (SIGSTOP, SIGCONT).
func (p *Process) Send(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Signal sends sig and waits up to timeout for the process to exit, returning its exit code
// (-1 for a signal it did not handle); it fails the test if the process outlives the timeout.
func (p *Process) Signal(t testing.TB, sig syscall.Signal, timeout time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the next reader and the cleanup
		return exitCode(err)
	case <-time.After(timeout):
		t.Fatalf("still running %v after %v", timeout, sig)
		return -1
	}
}

// Exited tells whether the process has exited, and with what.
func (p *Process) Exited() (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	default:
		return nil, false
	}
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// Environ is the test process's environment without any setting the binary reads
// (KAFKA_BROKERS, HTTP_ADDR, LOG_LEVEL, ..., and OpenTelemetry's OTEL_ variables), for running the binary: a test says every setting
// it depends on, so a developer's exported KAFKA_BROKERS or the Taskfile's cannot point the
// binary at another broker or port.
func Environ() []string {
	settings := map[string]bool{}
	for _, name := range config.ServiceEnvNames() {
		settings[name] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !settings[name] && !strings.HasPrefix(name, "OTEL_") {
			env = append(env, kv)
		}
	}
	return env
}
