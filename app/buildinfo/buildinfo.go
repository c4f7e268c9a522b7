// Package buildinfo holds what the build stamps into the binary: the version and commit given
// with go build -ldflags "-X ...", or else what the Go toolchain records of the checkout it
// built from (go build's VCS stamp).
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Stamped by the build: -ldflags "-X github.com/pingpong/pingpong/app/buildinfo.Version=v1.2.3
// -X github.com/pingpong/pingpong/app/buildinfo.Commit=abc1234". Left at these defaults, they
// are filled from the toolchain's VCS stamp when there is one (a plain `go build` in a git
// checkout); `go run` and -buildvcs=false record none.
var (
	Version = "dev"
	Commit  = "unknown"
)

// From the VCS stamp, when Commit came from it: the commit's time (RFC 3339, UTC) and whether
// the checkout had changes that are not committed.
var (
	CommitTime string
	Modified   bool
)

func init() {
	if info, ok := debug.ReadBuildInfo(); ok {
		fromBuildInfo(info)
	}
}

// fromBuildInfo fills what -ldflags did not set from the toolchain's record of the build.
func fromBuildInfo(info *debug.BuildInfo) {
	if Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		// Since Go 1.24, derived from the checkout: a tag, or a pseudo-version, +dirty if modified.
		Version = info.Main.Version
	}
	if Commit != "unknown" {
		return
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	revision := settings["vcs.revision"]
	if revision == "" {
		return
	}
	Commit = revision[:min(len(revision), 12)] // as in Go's pseudo-versions
	CommitTime = settings["vcs.time"]
	Modified = settings["vcs.modified"] == "true"
}

// String is the version line of `pingpong version`.
func String() string {
	var b strings.Builder
	b.WriteString("pingpong " + Version + " (commit " + Commit)
	if CommitTime != "" {
		b.WriteString(" of " + CommitTime)
	}
	if Modified {
		b.WriteString(", with uncommitted changes")
	}
	b.WriteString(", " + runtime.Version() + ")")
	return b.String()
}

// Collector is the pingpong_build_info metric: always 1, with the build in its labels.
func Collector() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pingpong_build_info",
		Help: "Build of the running service: always 1, with version, commit and Go version as labels.",
	}, []string{"version", "commit", "goversion"})
	g.WithLabelValues(Version, Commit, runtime.Version()).Set(1)
	return g
}
