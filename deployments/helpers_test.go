package deployments

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

// repoRoot is where compose.yaml, the Dockerfile and Taskfile.yml are: tests run in this
// package's directory.
const repoRoot = ".."

// loadCompose loads compose.yaml the way `docker compose` does (compose-go is its loader),
// with an empty environment, so that every ${VAR:-default} takes its default.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	return loadComposeWith(t, types.Mapping{})
}

// loadComposeWith loads compose.yaml as Compose would with the caller's environment: what
// ${VARIABLE:-default} in it becomes.
func loadComposeWith(t *testing.T, environment types.Mapping) *types.Project {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml")}},
		Environment: environment,
	}
	project, err := loader.LoadWithContext(context.Background(), details)
	if err != nil {
		t.Fatalf("loading compose.yaml: %v", err)
	}
	return project
}

// service returns the named compose service or stops the test.
func service(t *testing.T, project *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := project.Services[name]
	if !ok {
		t.Fatalf("compose.yaml has no service %q", name)
	}
	return s
}

// env is the value of a service's environment variable, "" when unset.
func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// bindMountTarget is where the service mounts the repository path source (relative to the
// repository root), or "".
func bindMountTarget(t *testing.T, project *types.Project, s types.ServiceConfig, source string) string {
	t.Helper()
	want := filepath.Join(project.WorkingDir, source)
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && filepath.Clean(v.Source) == want {
			return v.Target
		}
	}
	return ""
}

// declaresPort reports whether the service listens on port for the other containers: it
// publishes it or exposes it.
func declaresPort(s types.ServiceConfig, port int) bool {
	for _, p := range s.Ports {
		if int(p.Target) == port {
			return true
		}
	}
	for _, e := range s.Expose {
		if e == strconv.Itoa(port) {
			return true
		}
	}
	return false
}

// splitHostPort splits host:port and converts the port, or stops the test.
func splitHostPort(t *testing.T, what, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: %q is not host:port: %v", what, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s: %q has no numeric port", what, addr)
	}
	return host, port
}

// defaultHTTPPort is the port of the service's HTTP_ADDR default, read from the code.
func defaultHTTPPort(t *testing.T) int {
	t.Helper()
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	var s config.Service
	s.AddFlags(fs)
	f := fs.Lookup(config.FlagName("HTTP_ADDR"))
	if f == nil {
		t.Fatal("the service has no HTTP_ADDR setting")
	}
	_, port := splitHostPort(t, "HTTP_ADDR default", f.DefValue)
	return port
}

// readYAML decodes a YAML file of the repository into v, or stops the test.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// requireTool finds an external program or fails the test saying how to install it.
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	return servicetest.RequireTool(t, name, install)
}

// run runs a program in the repository root and returns its combined output, stopping the
// test if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
