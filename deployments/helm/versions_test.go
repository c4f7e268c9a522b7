package helm_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestChartLintsStrictly: `helm lint --strict` (its warnings are errors) passes with every values
// file, for the Kubernetes version the tests render for. (It does not render in the template
// engine's strict mode: TestTemplatesReadValuesThatExist does that part.)
func TestChartLintsStrictly(t *testing.T) {
	helm := helm4(t)
	for _, file := range valuesFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			if _, err := runHelm(t, helm, "lint", "--strict", chartDir, "--kube-version", kubeVersion, "-f", file); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestHelm3RendersAsHelm4: the chart is apiVersion v2 and supports Helm 3.18 and later beside
// Helm 4. The oldest Helm 3 it supports renders every values file to the same manifests as Helm 4
// (`helm template`; blank lines aside), so every check of the other tests holds for Helm 3 too.
func TestHelm3RendersAsHelm4(t *testing.T) {
	helm := helm4(t)
	helm3 := requireHelm(t, "helm3", 3, 18, installHelm3)
	for _, file := range valuesFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			args := []string{"template", releaseName, chartDir, "-n", namespace, "--kube-version", kubeVersion, "-f", file}
			want, err := runHelm(t, helm, args...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := runHelm(t, helm3, args...)
			if err != nil {
				t.Fatal(err)
			}
			// The same documents in the same order; Helm 4 leaves a blank line before each "---".
			if g, w := documents(got), documents(want); g != w {
				t.Errorf("Helm 3 renders %s differently from Helm 4:\n%s", filepath.Base(file), firstDifference(g, w))
			}
		})
	}
}

// documents is a render's YAML documents, each without its surrounding blank lines.
func documents(render []byte) string {
	var docs []string
	for _, doc := range splitManifests(string(render)) {
		docs = append(docs, strings.TrimSpace(doc.text))
	}
	return strings.Join(docs, "\n---\n")
}

// firstDifference shows the first line where two renders part.
func firstDifference(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(la), len(lb)) {
		if i < len(la) && i < len(lb) && la[i] == lb[i] {
			continue
		}
		line := func(lines []string) string {
			if i < len(lines) {
				return lines[i]
			}
			return "(end)"
		}
		return fmt.Sprintf("line %d:\n  helm3: %s\n  helm:  %s", i+1, line(la), line(lb))
	}
	return "(the same lines)"
}
