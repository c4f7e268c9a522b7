package helm_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestValuesAreDocumented: every value of values.yaml has a "## @param" line, and every
// @param is in the README's values table, so the table cannot fall behind the values.
func TestValuesAreDocumented(t *testing.T) {
	valuesText, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var params []string
	for _, m := range regexp.MustCompile(`(?m)^\s*## @param (\S+) \S`).FindAllStringSubmatch(string(valuesText), -1) {
		params = append(params, m[1])
	}
	for _, p := range params {
		if !strings.Contains(string(readme), "| `"+p+"` |") {
			t.Errorf("value %s is not in the README's values table", p)
		}
	}
	for _, leaf := range leaves("", defaultValues(t)) {
		documented := false
		for _, p := range params {
			documented = documented || leaf == p || strings.HasPrefix(leaf, p+".")
		}
		if !documented {
			t.Errorf("value %s has no \"## @param %s <description>\" line in values.yaml", leaf, leaf)
		}
	}
}

// leaves lists the paths of the values that are not maps (empty maps count as values).
func leaves(prefix string, m map[string]any) []string {
	var out []string
	for k, v := range m {
		path := strings.TrimPrefix(prefix+"."+k, ".")
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			out = append(out, leaves(path, sub)...)
			continue
		}
		out = append(out, path)
	}
	sort.Strings(out)
	return out
}
