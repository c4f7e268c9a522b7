package middleware

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// The chain's documentation (this package's doc.go and docs/architecture.md) lists the
// middleware Chain wires, in its order: outermost first, below the router-level ones
// (GrowStack, RouterMetrics, wired by app/service) and above the handler.
func TestTheDocumentedChainIsTheWiredOne(t *testing.T) {
	var wired []string
	for _, l := range links(ChainConfig{}) {
		wired = append(wired, l.name)
	}
	docs := []struct {
		file string
		// section is the text the list is found in; name the names in it.
		section, name *regexp.Regexp
	}{
		{"doc.go", regexp.MustCompile(`(?s)outermost first.*?\n//\thandler\n`), regexp.MustCompile(`(?m)^//\t([A-Z]\w+)`)},
		{"../docs/architecture.md", regexp.MustCompile(`(?s)### The middleware chain\n.*?\n\n(\|.*?\n)\n`), regexp.MustCompile(`(?m)^\| ([A-Z]\w+) \|`)},
	}
	for _, d := range docs {
		text, err := os.ReadFile(d.file)
		if err != nil {
			t.Fatal(err)
		}
		section := d.section.Find(text)
		if section == nil {
			t.Fatalf("%s: no chain found", d.file)
		}
		var documented []string
		for _, m := range d.name.FindAllSubmatch(section, -1) {
			if name := string(m[1]); name != "GrowStack" && name != "RouterMetrics" {
				documented = append(documented, name)
			}
		}
		if !slices.Equal(documented, wired) {
			t.Errorf("%s documents the chain\n  %v\nChain wires\n  %v", d.file, documented, wired)
		}
	}
}
