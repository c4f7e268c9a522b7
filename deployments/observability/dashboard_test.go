package observability_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The rows of the dashboard, in order: the four golden signals, then the broker.
var wantRows = []string{"Traffic", "Latency", "Errors", "Saturation", "Exactly once", "Broker"}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("the dashboard needs a uid and a title (links and provisioning use the uid): uid %q, title %q", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion is %d; panels of type timeseries and datasource references by uid need 36 or more", d.SchemaVersion)
	}

	// Rows: the golden signals and the broker, each with panels under it.
	var rows []string
	panelsUnder := map[string]int{}
	current := ""
	for _, p := range d.Panels {
		if p.Type == "row" {
			current = p.Title
			rows = append(rows, p.Title)
			panelsUnder[current] += len(p.Panels)
			continue
		}
		panelsUnder[current]++
	}
	if len(rows) != len(wantRows) {
		t.Fatalf("rows are %q, want rows starting %q", rows, wantRows)
	}
	for i, want := range wantRows {
		if !strings.HasPrefix(rows[i], want) {
			t.Errorf("row %d is %q, want it to start %q", i+1, rows[i], want)
		}
		if panelsUnder[rows[i]] == 0 {
			t.Errorf("row %q has no panels", rows[i])
		}
	}
	if panelsUnder[""] > 0 {
		t.Errorf("%d panels come before the first row", panelsUnder[""])
	}

	ids := map[int]string{}
	cells := map[[2]int]string{}
	for _, p := range append(append([]panel(nil), d.Panels...), nestedPanels(d)...) {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q has id %d, already %q's (or 0): ids must be unique", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W < 1 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
			t.Errorf("panel %q lies outside Grafana's 24-column grid: %+v", p.Title, p.GridPos)
		}
		// Overlapping panels are drawn over each other.
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, taken := cells[[2]int{x, y}]; taken {
					t.Errorf("panel %q overlaps panel %q at x=%d y=%d", p.Title, other, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
	}

	for _, p := range d.queryPanels() {
		if p.Type != "timeseries" && p.Type != "stat" {
			t.Errorf("panel %q is a %q; the dashboard uses timeseries and stat panels", p.Title, p.Type)
		}
		if strings.TrimSpace(p.Title) == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if strings.TrimSpace(p.Description) == "" {
			t.Errorf("panel %q has no description (the (i) that says what it shows)", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refIDs := map[string]bool{}
		for _, target := range p.Targets {
			if strings.TrimSpace(target.Expr) == "" {
				t.Errorf("panel %q has a target without expr", p.Title)
			}
			if target.RefID == "" || refIDs[target.RefID] {
				t.Errorf("panel %q has an empty or repeated refId %q", p.Title, target.RefID)
			}
			refIDs[target.RefID] = true
		}
	}
}

func nestedPanels(d dashboard) []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p.Panels...)
	}
	return out
}

// TestDashboardUsesTheDatasourceVariable: a dashboard that names a datasource by id or uid works
// only in the Grafana it was exported from. Every panel and query must use ${datasource}.
func TestDashboardUsesTheDatasourceVariable(t *testing.T) {
	d := loadDashboard(t)
	var dsVar *variable
	for i, v := range d.Templating.List {
		if v.Name == "datasource" {
			dsVar = &d.Templating.List[i]
		}
	}
	if dsVar == nil || dsVar.Type != "datasource" || dsVar.queryText() != "prometheus" {
		t.Fatalf("the dashboard needs a template variable datasource of type datasource with query prometheus, got %+v", dsVar)
	}

	want := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	check := func(where string, raw json.RawMessage) {
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: datasource is %s, want %v", where, raw, want)
		}
	}
	for _, p := range d.queryPanels() {
		check(fmt.Sprintf("panel %q", p.Title), p.Datasource)
		for _, target := range p.Targets {
			check(fmt.Sprintf("panel %q query %s", p.Title, target.RefID), target.Datasource)
		}
	}

	// Anywhere else in the file (variables, annotations): no datasource but the variable or
	// Grafana's built-in one, and no import-time placeholders (__inputs, ${DS_...}).
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		t.Fatal(err)
	}
	walk(tree, "", func(path string, key string, value any) {
		if key == "__inputs" {
			t.Errorf("%s: __inputs is for dashboards imported by hand; a provisioned dashboard uses ${datasource}", path)
		}
		if key != "datasource" {
			return
		}
		switch ds := value.(type) {
		case string:
			t.Errorf("%s: datasource %q named by a string, want {type: prometheus, uid: ${datasource}}", path, ds)
		case map[string]any:
			uid, _ := ds["uid"].(string)
			if uid != "${datasource}" && uid != "-- Grafana --" {
				t.Errorf("%s: datasource uid %q is hard-coded, want ${datasource}", path, uid)
			}
		}
	})
	if strings.Contains(string(data), "${DS_") {
		t.Errorf("the dashboard has an import-time ${DS_...} placeholder; use ${datasource}")
	}
}

// walk calls fn for every key of every object in a decoded JSON tree.
func walk(node any, path string, fn func(path, key string, value any)) {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			fn(path, k, v)
			walk(v, path+"."+k, fn)
		}
	case []any:
		for i, v := range n {
			walk(v, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// TestDashboardVariablesAreDefined: a query that uses a variable the dashboard does not define
// is sent to Prometheus with a literal "$name" in it and fails.
func TestDashboardVariablesAreDefined(t *testing.T) {
	d := loadDashboard(t)
	defined := map[string]bool{}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
		if v.Type == "query" && (!v.IncludeAll || v.AllValue != ".*") {
			t.Errorf("variable %s: want includeAll with allValue .*, so that All also matches series without the label (compose has no namespace)", v.Name)
		}
	}
	for _, name := range []string{"datasource", "namespace", "job"} {
		if !defined[name] {
			t.Errorf("the dashboard has no %s variable", name)
		}
	}
	for _, p := range d.queryPanels() {
		for _, target := range p.Targets {
			for _, name := range variableRefs(target.Expr) {
				if !defined[name] && !grafanaBuiltins[name] {
					t.Errorf("panel %q uses $%s, which the dashboard does not define", p.Title, name)
				}
			}
		}
	}
}

// grafanaBuiltins are the variables Grafana itself provides that the dashboard uses.
var grafanaBuiltins = map[string]bool{"__rate_interval": true, "__range": true, "__interval": true}

var variableRef = regexp.MustCompile(`\$\{?(\w+)\}?`)

func variableRefs(expr string) []string {
	var names []string
	for _, m := range variableRef.FindAllStringSubmatch(expr, -1) {
		names = append(names, m[1])
	}
	return names
}
