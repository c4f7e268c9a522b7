package reliability_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/servicetest"
)

// binary is the pingpong binary, built once, for the scenarios that kill the process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pingpong-reliability")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "pingpong")
	build := exec.Command("go", "build", "-o", binary, "../app")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binary:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running pingpong binary.
type process struct {
	cmd    *exec.Cmd
	output *servicetest.SyncBuffer
	done   chan error
}

func startBinary(t *testing.T, brokers []string) *process {
	t.Helper()
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(),
		"KAFKA_BROKERS="+strings.Join(brokers, ","),
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_FORMAT=json",
	)
	p := &process{cmd: cmd, output: &servicetest.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			lines := strings.Split(p.output.String(), "\n")
			t.Logf("pingpong output (last lines):\n%s", strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	return p
}

// kill sends SIGKILL, which the process cannot catch: nothing is flushed, nothing committed.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGKILL")
	}
}
