// Package buildinfo holds what the build stamps into the binary (go build -ldflags "-X ...").
package buildinfo

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// Stamped by the build: -ldflags "-X github.com/pingpong/pingpong/app/buildinfo.Version=v1.2.3
// -X github.com/pingpong/pingpong/app/buildinfo.Commit=abc1234".
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the version line of `pingpong version`.
func String() string {
	return "pingpong " + Version + " (commit " + Commit + ", " + runtime.Version() + ")"
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
