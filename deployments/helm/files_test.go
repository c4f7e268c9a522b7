package helm_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestFilesAreTheRepositoryFiles: the alerts and the dashboard the chart ships are copies of the
// repository's own files, byte for byte, so that they cannot go stale. (They were links, which
// Helm follows but warns about on every lint and render: "found symbolic link in path".)
func TestFilesAreTheRepositoryFiles(t *testing.T) {
	for chartFile, original := range map[string]string{
		"files/pingpong-alerts.yml": "deployments/prometheus/rules/pingpong-alerts.yml",
		"files/pingpong.json":       "deployments/grafana/dashboards/pingpong.json",
	} {
		copied := fromRoot(filepath.Join(chartDir, chartFile))
		info, err := os.Lstat(filepath.Join(chartDir, chartFile))
		if err != nil {
			t.Errorf("the chart has no %s: cp %s %s", chartFile, original, copied)
			continue
		}
		if !info.Mode().IsRegular() {
			t.Errorf("%s is not a regular file (Helm warns about links): cp --remove-destination %s %s", copied, original, copied)
			continue
		}
		got, err := os.ReadFile(filepath.Join(chartDir, chartFile))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(repoRoot, original))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: copy the original over it (cp %s %s)", copied, original, original, copied)
		}
	}
}

// TestChartHasNoLinks: Helm warns "found symbolic link in path" about every link in a chart.
func TestChartHasNoLinks(t *testing.T) {
	err := filepath.WalkDir(chartDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			t.Errorf("%s is a link: Helm warns about it on every lint and render; copy the file instead", fromRoot(path))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
