package deployments

import (
	"debug/elf"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is a FROM and the instructions under it.
type stage struct {
	from  string // the base image or stage
	name  string // AS name, or ""
	steps []instruction
}

// parseDockerfile reads the repository's Dockerfile into stages. It knows the little of the
// syntax this Dockerfile uses: comments, continuation lines, FROM [--platform] image [AS name].
func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var current strings.Builder
	flush := func() {
		line := strings.TrimSpace(current.String())
		current.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			var s stage
			for _, f := range strings.Fields(in.args) {
				switch {
				case strings.HasPrefix(f, "--"):
				case s.from == "":
					s.from = f
				case strings.EqualFold(f, "AS"):
				default:
					s.name = f
				}
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
			}
			return
		}
		last := &stages[len(stages)-1]
		last.steps = append(last.steps, in)
	}
	for _, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") {
			continue // a comment, also between continuation lines
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			current.WriteString(body + " ")
			continue
		}
		current.WriteString(line)
		flush()
	}
	flush()
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	return stages
}

// find returns the stage's instructions of one kind.
func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.steps {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm decodes an instruction in exec (JSON array) form, or stops the test.
func execForm(t *testing.T, in instruction, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s %s is not in exec form [\"...\"]: the runtime image has no shell to run it", in.cmd, args)
	}
	return argv
}

func TestDockerfileBaseImagesArePinned(t *testing.T) {
	stages := parseDockerfile(t)
	names := map[string]bool{}
	for _, s := range stages {
		if names[s.from] || s.from == "scratch" {
			continue
		}
		if s.name != "" {
			names[s.name] = true
		}
		ref, err := reference.ParseNormalizedNamed(s.from)
		if err != nil {
			t.Errorf("FROM %s: %v", s.from, err)
			continue
		}
		tagged, hasTag := ref.(reference.Tagged)
		if _, hasDigest := ref.(reference.Digested); hasDigest {
			continue
		}
		if !hasTag || tagged.Tag() == "latest" {
			t.Errorf("FROM %s is not pinned: give a version tag (and a digest where it can be checked)", s.from)
		}
	}
}

func TestDockerfileRuntimeImage(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	if final.from != "scratch" && !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Errorf("runtime stage is FROM %s, want distroless/static or scratch: nothing but the static binary", final.from)
	}

	users := final.find("USER")
	if len(users) == 0 {
		t.Fatal("runtime stage sets no USER: the service would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1].args, ":")
	if uid, err := strconv.Atoi(user); err != nil || uid == 0 {
		t.Errorf("USER %s: want a numeric uid other than 0, so that Kubernetes' runAsNonRoot can check it", users[len(users)-1].args)
	}

	port := strconv.Itoa(defaultHTTPPort(t))
	var exposed bool
	for _, in := range final.find("EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			exposed = exposed || strings.TrimSuffix(p, "/tcp") == port
		}
	}
	if !exposed {
		t.Errorf("runtime stage does not EXPOSE %s, the service's default HTTP_ADDR port", port)
	}

	entrypoints := final.find("ENTRYPOINT")
	if len(entrypoints) != 1 {
		t.Fatalf("runtime stage has %d ENTRYPOINTs, want 1", len(entrypoints))
	}
	binary := execForm(t, entrypoints[0], entrypoints[0].args)[0]
	var copied bool
	for _, in := range final.find("COPY") {
		fields := strings.Fields(in.args)
		copied = copied || fields[len(fields)-1] == binary
	}
	if !copied {
		t.Errorf("ENTRYPOINT runs %s, which no COPY puts in the runtime stage", binary)
	}

	checks := final.find("HEALTHCHECK")
	if len(checks) != 1 {
		t.Fatalf("runtime stage has %d HEALTHCHECKs, want 1", len(checks))
	}
	_, cmd, ok := strings.Cut(checks[0].args, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s has no CMD", checks[0].args)
	}
	argv := execForm(t, checks[0], strings.TrimSpace(cmd))
	if argv[0] != binary || len(argv) < 2 || argv[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK runs %v, want [%s healthcheck]", argv, binary)
	}
}

// buildCommand is the build stage's `go build` RUN line with the environment it runs in: the
// stage's ENV and its ARG defaults.
func buildCommand(t *testing.T, build stage) (script string, env map[string]string) {
	t.Helper()
	env = map[string]string{}
	for _, in := range build.steps {
		switch in.cmd {
		case "ARG", "ENV":
			name, value, _ := strings.Cut(in.args, "=")
			env[name] = value
		case "RUN":
			if !strings.Contains(in.args, "go build") {
				continue
			}
			// Drop RUN's own flags (--mount=type=cache,...): BuildKit options, not shell.
			fields := strings.Fields(in.args)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				fields = fields[1:]
			}
			script = strings.Join(fields, " ")
		}
	}
	if script == "" {
		t.Fatalf("build stage FROM %s has no RUN ... go build", build.from)
	}
	return script, env
}

// buildContext copies what `docker build .` sends to the builder, the repository less what
// .dockerignore leaves out (matched with Docker's own pattern matcher), to a new directory.
func buildContext(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatalf("no .dockerignore: %v", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	ignored, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	dir := t.TempDir()
	err = filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repoRoot, path)
		if err != nil || rel == "." {
			return err
		}
		skip, err := ignored.MatchesOrParentMatches(filepath.ToSlash(rel))
		switch {
		case err != nil:
			return err
		case skip && d.IsDir() && !ignored.Exclusions():
			return filepath.SkipDir
		case skip:
			return nil
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		return copyFile(path, filepath.Join(dir, rel))
	})
	if err != nil {
		t.Fatalf("copying the build context: %v", err)
	}
	return dir
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestDockerignoreKeepsTheContextSmall(t *testing.T) {
	ctx := buildContext(t)
	// go.work names deployments/, which is left out: with it, the image's go build would fail.
	for _, left := range []string{".git", "deployments", "docs", "compose.yaml", "go.work"} {
		if _, err := os.Stat(filepath.Join(ctx, left)); err == nil {
			t.Errorf("the build context holds %s, which the image does not need", left)
		}
	}
	for _, kept := range []string{"go.mod", "go.sum", "app"} {
		if _, err := os.Stat(filepath.Join(ctx, kept)); err != nil {
			t.Errorf("the build context lacks %s, which the build needs", kept)
		}
	}
}

// TestDockerfileBuildsAStaticStampedBinary runs the build stage's own command line here, as
// the image build would (sh -c in the build context .dockerignore leaves, the stage's ENV and
// ARGs), and checks what it makes: a static binary that reports the version and commit it was
// given.
func TestDockerfileBuildsAStaticStampedBinary(t *testing.T) {
	stages := parseDockerfile(t)
	build := stages[0]
	script, env := buildCommand(t, build)
	for _, flag := range []string{"-trimpath", "buildinfo.Version=", "buildinfo.Commit="} {
		if !strings.Contains(script, flag) {
			t.Errorf("go build command %q lacks %s", script, flag)
		}
	}
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage has CGO_ENABLED=%q, want 0: a cgo binary needs a libc the runtime image lacks", env["CGO_ENABLED"])
	}

	// Write to a temporary file instead of the stage's output path.
	fields := strings.Fields(script)
	var out string
	for i, f := range fields {
		if f == "-o" && i+1 < len(fields) {
			out = fields[i+1]
		}
	}
	if out == "" {
		t.Fatalf("go build command %q has no -o: the runtime stage copies a known path", script)
	}
	binary := filepath.Join(t.TempDir(), "pingpong")
	script = strings.Replace(script, " -o "+out+" ", " -o "+binary+" ", 1)

	env["VERSION"], env["COMMIT"] = "v9.8.7-dockerfile-test", "0123abc"
	env["TARGETOS"], env["TARGETARCH"] = runtime.GOOS, runtime.GOARCH
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = buildContext(t)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command failed: %v\n%s\n%s", err, script, output)
	}

	f, err := elf.Open(binary)
	if err != nil {
		t.Fatalf("the build made no ELF binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): it is not static and will not start on distroless/static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v: it is not static", libs)
	}

	version, err := exec.Command(binary, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("pingpong version: %v\n%s", err, version)
	}
	for _, want := range []string{"v9.8.7-dockerfile-test", "0123abc"} {
		if !strings.Contains(string(version), want) {
			t.Errorf("pingpong version = %q, want it to show %s from the build arguments", version, want)
		}
	}
}

// TestDocsExecTheImagesBinary: every `kubectl exec ... -- <binary>` the docs and the chart's
// NOTES.txt give runs the binary where the Dockerfile puts it; the image has no shell to find
// another.
func TestDocsExecTheImagesBinary(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	entrypoint := final.find("ENTRYPOINT")[0]
	binary := execForm(t, entrypoint, entrypoint.args)[0]

	docs, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	docs = append(docs, filepath.Join(repoRoot, "README.md"),
		filepath.Join(repoRoot, "helm", "pingpong", "README.md"),
		filepath.Join(repoRoot, "helm", "pingpong", "templates", "NOTES.txt"))
	exec := regexp.MustCompile(`kubectl .*\bexec\b.* -- (\S*pingpong)\b`) // the other execs are Kafka's
	var seen int
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range exec.FindAllStringSubmatch(string(data), -1) {
			seen++
			if m[1] != binary {
				rel, _ := filepath.Rel(repoRoot, doc)
				t.Errorf("%s: %q runs %s; the image's binary is %s", rel, m[0], m[1], binary)
			}
		}
	}
	if seen == 0 {
		t.Error("no kubectl exec in the docs: the test reads the wrong files")
	}
}
