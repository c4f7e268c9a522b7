// Package observability_test checks the monitoring that ships with pingpong: the Grafana
// dashboard, the Prometheus alert rules and their promtool unit tests, and, against a real
// Prometheus scraping the real service, that every query of both runs and finds the service's
// metrics. It has no code of its own: the files it checks are in deployments/grafana and
// deployments/prometheus.
package observability_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pingpong/pingpong/app/servicetest"
	"go.yaml.in/yaml/v3"
)

// The files under test, from this directory.
const (
	repoRoot      = "../.."
	dashboardFile = repoRoot + "/deployments/grafana/dashboards/pingpong.json"
	rulesFile     = repoRoot + "/deployments/prometheus/rules/pingpong-alerts.yml"
	ruleTestsGlob = repoRoot + "/deployments/prometheus/tests/*.yml"
	runbooksFile  = repoRoot + "/docs/runbooks.md"
	monitoringDoc = repoRoot + "/docs/monitoring.md"
)

// requireTool finds a program of Debian's prometheus package, or fails saying how to get it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return servicetest.RequireTool(t, name, "install Debian's prometheus package (apt-get install prometheus), which has prometheus and promtool")
}

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	decodeYAML(t, rulesFile, &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", rulesFile)
	}
	return rules
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  json.RawMessage `json:"datasource"`
	GridPos     struct{ H, W, X, Y int }
	Targets     []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Query      any    `json:"query"` // a string, or {"query": "..."}
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
}

// queryText is a query variable's query, in either of the shapes Grafana stores.
func (v variable) queryText() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardFile, err)
	}
	return d
}

// queryPanels are the panels that hold queries, inside collapsed rows too, in order.
func (d dashboard) queryPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		if p.Type == "row" {
			out = append(out, p.Panels...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// githubAnchors are the anchors GitHub gives the headings of a Markdown file: lower case,
// punctuation other than '-' and '_' dropped, spaces turned to '-'.
func githubAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

// ownMetric matches the names of the metrics the service itself exports (its own, Watermill's,
// the Go and process collectors'), and up, which its scrape produces.
var ownMetric = regexp.MustCompile(`\b(?:(?:pingpong|go|process)_[a-zA-Z0-9_]+|up)\b`)

// selectors are the vector selectors of the service's own metrics in a query, with their label
// matchers: pingpong_requests_total{outcome="error"}.
var ownSelector = regexp.MustCompile(`\b(?:(?:pingpong|go|process)_[a-zA-Z0-9_]+|up)(?:\{[^}]*\})?`)

func ownSelectors(expr string) []string {
	var out []string
	for _, m := range ownSelector.FindAllStringIndex(expr, -1) {
		// "sum by (...) (" and function names are not selectors: a selector is not followed by "(".
		if rest := strings.TrimLeft(expr[m[1]:], " "); strings.HasPrefix(rest, "(") {
			continue
		}
		out = append(out, expr[m[0]:m[1]])
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func globFiles(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no file matches %s", pattern)
	}
	return files
}
