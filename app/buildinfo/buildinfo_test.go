package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "5846e10f7a2b6c0e1d3f4a5b6c7d8e9f0a1b2c3d"},
			{Key: "vcs.time", Value: "2026-12-06T08:46:25Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	for _, tc := range []struct {
		name            string
		version, commit string // as -ldflags left them
		info            debug.BuildInfo
		want            string
	}{
		{"ldflags win over the VCS stamp", "v1.2.3", "abc1234",
			debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206084625-5846e10f7a2b"}, Settings: vcs("false")},
			"pingpong v1.2.3 (commit abc1234, " + runtime.Version() + ")"},
		{"the VCS stamp of a clean checkout", "dev", "unknown",
			debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206084625-5846e10f7a2b"}, Settings: vcs("false")},
			"pingpong v0.0.0-20261206084625-5846e10f7a2b (commit 5846e10f7a2b of 2026-12-06T08:46:25Z, " + runtime.Version() + ")"},
		{"the VCS stamp of a modified checkout", "dev", "unknown",
			debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206084625-5846e10f7a2b+dirty"}, Settings: vcs("true")},
			"pingpong v0.0.0-20261206084625-5846e10f7a2b+dirty (commit 5846e10f7a2b of 2026-12-06T08:46:25Z, with uncommitted changes, " + runtime.Version() + ")"},
		{"no stamp (go run, -buildvcs=false)", "dev", "unknown",
			debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "-buildmode", Value: "exe"}}},
			"pingpong dev (commit unknown, " + runtime.Version() + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Version, Commit, CommitTime, Modified = tc.version, tc.commit, "", false
			fromBuildInfo(&tc.info)
			if got := String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
