package servicetest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// PrometheusMajor is the major version of the Prometheus that compose runs (prom/prometheus:v3.5.0)
// and so evaluates the rules; promtool must be of the same major version, since 3.x reads rules
// and test files differently from the 2.x that Debian ships.
const PrometheusMajor = "3"

// RequirePromtool finds promtool of PrometheusMajor and returns its path. Another version
// counts as missing: skipped with how to install the right one, or failed where the tests must
// prove everything (see RequireTool).
func RequirePromtool(t testing.TB) string {
	t.Helper()
	const install = "bash .ci/run builds it (module github.com/prometheus/prometheus, cmd/promtool, at v0.305.0 for 3.5.0)"
	path := RequireTool(t, "promtool", install)
	out, err := exec.Command(path, "--version").CombinedOutput()
	version := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if err == nil && strings.HasPrefix(version, "promtool, version "+PrometheusMajor+".") {
		return path
	}
	if os.Getenv("CI") != "" || os.Getenv("PINGPONG_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is %q, not Prometheus %s.x: %s", path, version, PrometheusMajor, install)
	}
	t.Skipf("SKIPPED: %s is %q, not Prometheus %s.x: %s", path, version, PrometheusMajor, install)
	return ""
}
