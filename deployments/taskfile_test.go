package deployments

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const installTask = "go install github.com/go-task/task/v3/cmd/task@v3.54.0"

// The targets of the daily loop, the release loop and the operator tools.
var wantTasks = []string{
	"up", "down", "logs", "ps", "run", "build", "image", "test", "lint",
	"ping", "dlq", "dlq:replay", "topics", "bench",
}

// dockerTasks need a Docker engine.
var dockerTasks = []string{"up", "down", "logs", "ps", "image"}

// TestTaskfileTargetsAreDescribed reads the tasks as task itself parses Taskfile.yml: a task
// without a description is missing from `task --list`, so nobody finds it.
func TestTaskfileTargetsAreDescribed(t *testing.T) {
	task := requireTool(t, "task", installTask)
	var list struct {
		Tasks []struct {
			Name string `json:"name"`
			Desc string `json:"desc"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(run(t, task, "--list-all", "--json")), &list); err != nil {
		t.Fatalf("task --list-all --json: %v", err)
	}
	described := map[string]bool{}
	for _, tk := range list.Tasks {
		if strings.TrimSpace(tk.Desc) == "" {
			t.Errorf("task %s has no desc: `task --list` does not show it", tk.Name)
		}
		described[tk.Name] = true
	}
	for _, name := range wantTasks {
		if !described[name] {
			t.Errorf("Taskfile.yml has no task %q", name)
		}
	}
}

// TestTaskfileSaysWhenDockerIsMissing runs the Docker tasks where no docker can be found: each
// must stop before running anything, saying what is missing.
func TestTaskfileSaysWhenDockerIsMissing(t *testing.T) {
	task := requireTool(t, "task", installTask)
	for _, name := range dockerTasks {
		cmd := exec.Command(task, name)
		cmd.Dir = repoRoot
		cmd.Env = []string{"PATH=" + t.TempDir(), "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("task %s succeeded without docker:\n%s", name, out)
			continue
		}
		if !strings.Contains(string(out), "docker is not installed") {
			t.Errorf("task %s without docker says %q, want a message that docker is not installed", name, out)
		}
	}
}

// TestTaskfileImageNeedsNoCompose: `task image` runs docker build, so a docker without the
// Compose plugin builds the image.
func TestTaskfileImageNeedsNoCompose(t *testing.T) {
	task := requireTool(t, "task", installTask)
	bin := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	// A docker with an engine and no Compose plugin, that writes down what it is asked.
	fake := "#!/bin/sh\necho \"$*\" >>" + calls + "\ncase \"$1\" in compose) echo 'docker: unknown command: docker compose' >&2; exit 1;; esac\n"
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(task, "image")
	cmd.Dir = repoRoot
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("task image with docker but no Compose plugin: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(calls)
	if !strings.Contains(string(got), "\nbuild ") && !strings.HasPrefix(string(got), "build ") {
		t.Errorf("task image did not run docker build; docker was called with:\n%s", got)
	}
}

// TestTaskfileLintSaysWhichToolIsMissing: without yamllint, actionlint and shellcheck, `task
// lint` still runs gofmt and go vet, then fails naming each missing tool. go vet is given -n
// (it prints its commands instead of running them): run for real beside the suite's own
// compilation, it vetted the whole repository again and took 149 s of a cold `go test` on two
// busy cores. .ci/run's vet section runs it for real.
func TestTaskfileLintSaysWhichToolIsMissing(t *testing.T) {
	task := requireTool(t, "task", installTask)
	goBin := filepath.Join(runtime.GOROOT(), "bin") // go and gofmt, and nothing else
	cmd := exec.Command(task, "lint")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "PATH="+goBin+":/nonexistent", "GOFLAGS=-n")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("task lint passed without the linters:\n%s", out)
	}
	for _, want := range []string{"go vet ./...", "not checked, the tool is missing", "yamllint: apt-get install yamllint", "actionlint: go install", "shellcheck: apt-get install shellcheck"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("task lint does not say %q:\n%s", want, out)
		}
	}
}
