package deployments

import (
	"encoding/json"
	"os/exec"
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
