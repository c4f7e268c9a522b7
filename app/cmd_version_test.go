package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/pingpong/pingpong/app/servicetest"
)

// TestVersionOfAPlainBuildNamesItsCommit is `go build -o bin/pingpong ./app` in a git checkout,
// without -ldflags: `pingpong version` names the commit, its time and whether the checkout had
// changes, from the toolchain's VCS stamp. The checkout is a copy of the packages the binary is
// built from, committed at a known time; git, an independent tool, says which commit it is.
func TestVersionOfAPlainBuildNamesItsCommit(t *testing.T) {
	git := servicetest.RequireTool(t, "git", "apt-get install git")
	dir := t.TempDir()
	copyModule(t, dir)
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	at := []string{"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"}
	run(at, git, "init", "-q")
	run(at, git, "add", ".")
	run(at, git, "commit", "-q", "-m", "the checkout")
	revision := run(at, git, "rev-parse", "HEAD")[:12]
	// -buildvcs=true: the README's command stamps by default; .ci/run's GOFLAGS turn it off.
	build := func() string {
		run(nil, "go", "build", "-buildvcs=true", "-o", "bin/pingpong", "./app")
		return run(nil, filepath.Join(dir, "bin", "pingpong"), "version")
	}

	want := "pingpong v0.0.0-20260102030405-" + revision + " (commit " + revision + " of 2026-01-02T03:04:05Z, " + runtime.Version() + ")"
	if got := build(); got != want {
		t.Errorf("a build of a clean checkout says\n%s\nwant\n%s", got, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "handlers", "notes.go"), []byte("package handlers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := build()
	if !regexp.MustCompile(`^pingpong v0\.0\.0-20260102030405-` + revision + `\+dirty \(commit ` + revision +
		` of 2026-01-02T03:04:05Z, with uncommitted changes, go`).MatchString(got) {
		t.Errorf("a build of a modified checkout says %s", got)
	}
}

// copyModule copies go.mod, go.sum and the Go files (tests left out) of the module's packages
// the binary is built from into dir.
func copyModule(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}
	for _, pkg := range strings.Fields(string(out)) {
		goFiles, _ := filepath.Glob(filepath.Join(pkg, "*.go"))
		for _, f := range goFiles {
			if !strings.HasSuffix(f, "_test.go") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
