package servicetest

import (
	"os"
	"os/exec"
	"testing"
)

// RequireTool finds an external program a test needs (kcat, promtool, prometheus, task, script,
// helm) and returns its path.
//
// Where the program is missing, the test is skipped with how to install it, so that the README's
// `go test ./... ./deployments/...` works on a machine with only Go (its quick start). Where the tests
// must prove everything (CI is set, as CI runs .ci/run, or PINGPONG_REQUIRE_TOOLS=1), a missing
// program fails the test instead: CI cannot pass by skipping. .ci/run installs them all.
func RequireTool(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" || os.Getenv("PINGPONG_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is not installed, and this test needs it: %s (.ci/run installs it)", name, install)
	}
	t.Skipf("SKIPPED: %s is not installed: %s (.ci/run installs it; with CI=true or PINGPONG_REQUIRE_TOOLS=1 this fails)", name, install)
	return ""
}
