package observability_test

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pingpong/pingpong/app/servicetest"
)

// TestRulesPassPromtool runs what CI and a reviewer would: promtool check rules (syntax, PromQL,
// templates) and promtool test rules (the unit tests of every alert).
func TestRulesPassPromtool(t *testing.T) {
	promtool := servicetest.RequirePromtool(t)
	check := exec.Command(promtool, "check", "rules", rulesFile)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	test := exec.Command(promtool, append([]string{"test", "rules"}, globFiles(t, ruleTestsGlob)...)...)
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// ruleTests is the part of a promtool test file the coverage check reads.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertIsTestedFiringAndQuiet: an alert without a case where it fires may never fire;
// one without a case where it stays quiet may always fire.
func TestEveryAlertIsTestedFiringAndQuiet(t *testing.T) {
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, path := range globFiles(t, ruleTestsGlob) {
		var f ruleTests
		decodeYAML(t, path, &f)
		if !slices.Contains(f.RuleFiles, "../rules/pingpong-alerts.yml") {
			t.Errorf("%s does not test ../rules/pingpong-alerts.yml (rule_files: %v)", path, f.RuleFiles)
		}
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	alerts := map[string]bool{}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts[r.Alert] = true
		if !fires[r.Alert] {
			t.Errorf("%s has no promtool test where it fires", r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("%s has no promtool test where it stays quiet", r.Alert)
		}
	}
	for name := range fires {
		if !alerts[name] {
			t.Errorf("the promtool tests expect an alert %s that the rules do not have", name)
		}
	}
}

// TestAlertsSayWhatAndWhereToLook: every alert has a severity Alertmanager can route on, a
// summary and description for the page, and a runbook section that exists.
func TestAlertsSayWhatAndWhereToLook(t *testing.T) {
	anchors := githubAnchors(t, runbooksFile)
	runbookURL := regexp.MustCompile(`^docs/runbooks\.md#([a-z0-9_-]+)$`)
	seen := map[string]bool{}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		if seen[r.Alert] {
			t.Errorf("two alerts are named %s", r.Alert)
		}
		seen[r.Alert] = true
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: labels.severity is %q, want critical or warning", r.Alert, s)
		}
		for _, key := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[key]) == "" {
				t.Errorf("%s has no annotations.%s", r.Alert, key)
			}
		}
		m := runbookURL.FindStringSubmatch(r.Annotations["runbook_url"])
		switch {
		case m == nil:
			t.Errorf("%s: runbook_url %q is not docs/runbooks.md#<anchor>", r.Alert, r.Annotations["runbook_url"])
		case !anchors[m[1]]:
			t.Errorf("%s: runbook_url %q points at no heading of %s", r.Alert, r.Annotations["runbook_url"], runbooksFile)
		case m[1] != strings.ToLower(r.Alert):
			t.Errorf("%s: runbook_url anchor is %q, want the alert's own section %q", r.Alert, m[1], strings.ToLower(r.Alert))
		}
	}
}

// TestEveryMetricIsDocumented: an alert or a panel on a metric that docs/monitoring.md does not
// explain leaves the on-call engineer guessing.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc := readFile(t, monitoringDoc)
	metric := regexp.MustCompile(`\b(?:pingpong|go|process|kafka|kubelet)_[a-zA-Z0-9_]+`)
	var exprs []string
	for _, r := range loadRules(t) {
		exprs = append(exprs, r.Expr)
	}
	for _, p := range loadDashboard(t).queryPanels() {
		for _, target := range p.Targets {
			exprs = append(exprs, target.Expr)
		}
	}
	missing := map[string]bool{}
	for _, expr := range exprs {
		for _, name := range metric.FindAllString(expr, -1) {
			// Histograms are documented by their base name.
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, "`"+base+"`") {
				missing[name] = true
			}
		}
	}
	for name := range missing {
		t.Errorf("%s is used by an alert or a panel but docs/monitoring.md does not mention it (as `%s`)", name, name)
	}
}
