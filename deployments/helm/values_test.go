package helm_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestTemplatesReadValuesThatExist: every chain of keys a template reads from .Values (or from a
// variable holding .Values) is a value of values.yaml, so a misspelt key is an error here rather
// than an empty string in the rendered manifest. (The helm CLI renders without the template
// engine's strict mode, even `helm lint --strict`.)
func TestTemplatesReadValuesThatExist(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	text := all.String()

	roots := []string{`\.Values`}
	for _, m := range regexp.MustCompile(`(\$\w+)\s*:=\s*\.Values\s*-?\}\}`).FindAllStringSubmatch(text, -1) {
		roots = append(roots, regexp.QuoteMeta(m[1]))
	}
	chains := map[string]bool{}
	ref := regexp.MustCompile(`(?:` + strings.Join(roots, "|") + `)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`)
	for _, m := range ref.FindAllStringSubmatch(text, -1) {
		chains[strings.TrimPrefix(m[1], ".")] = true
	}
	if len(chains) < 20 {
		t.Fatalf("found only %d value references in the templates: the pattern is wrong", len(chains))
	}

	values := defaultValues(t)
	var missing []string
	for chain := range chains {
		var cur any = values
		for _, key := range strings.Split(chain, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				missing = append(missing, chain)
				break
			}
			if cur, ok = m[key]; !ok {
				missing = append(missing, chain)
				break
			}
		}
	}
	sort.Strings(missing)
	for _, chain := range missing {
		t.Errorf("the templates read .Values.%s, which values.yaml does not have", chain)
	}
}
