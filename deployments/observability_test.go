package deployments

import (
	"encoding/json"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pingpong/pingpong/app/servicetest"
)

const prometheusConfig = "deployments/prometheus/prometheus.yml"

// prometheusFile is the part of prometheus.yml these tests read.
type prometheusFile struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// TestPrometheusConfigIsValid runs Prometheus' own checker on the configuration and, through
// rule_files, on the alert rules it loads.
func TestPrometheusConfigIsValid(t *testing.T) {
	promtool := servicetest.RequirePromtool(t)
	out := run(t, promtool, "check", "config", prometheusConfig)
	if !strings.Contains(out, "rule files found") || strings.Contains(out, " 0 rule files found") {
		t.Errorf("promtool found no alert rules through rule_files:\n%s", out)
	}
}

func TestPrometheusScrapesTheStack(t *testing.T) {
	project := loadCompose(t)
	var cfg prometheusFile
	readYAML(t, prometheusConfig, &cfg)

	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port := splitHostPort(t, "scrape target of job "+sc.JobName, target)
				if host == "localhost" {
					continue // Prometheus itself
				}
				s, ok := project.Services[host]
				if !ok {
					t.Errorf("job %s scrapes %s, but compose.yaml has no service %q", sc.JobName, target, host)
					continue
				}
				if !declaresPort(s, port) {
					t.Errorf("job %s scrapes %s, but service %s does not listen on %d (ports, expose)", sc.JobName, target, host, port)
				}
			}
		}
	}
	// The alert rules and the dashboard select the service by job="pingpong"; lag and
	// partition health come from the exporter.
	for _, job := range []string{"pingpong", "kafka-exporter"} {
		if !jobs[job] {
			t.Errorf("prometheus.yml has no scrape job %q", job)
		}
	}
}

func TestPrometheusLoadsTheMountedRules(t *testing.T) {
	project := loadCompose(t)
	prom := service(t, project, "prometheus")
	configTarget := bindMountTarget(t, project, prom, prometheusConfig)
	if configTarget == "" {
		t.Fatalf("the prometheus service does not mount %s", prometheusConfig)
	}
	var cfg prometheusFile
	readYAML(t, prometheusConfig, &cfg)
	if len(cfg.RuleFiles) == 0 {
		t.Fatal("prometheus.yml loads no rule_files: the alerts would never be evaluated")
	}
	for _, glob := range cfg.RuleFiles {
		if path.IsAbs(glob) {
			t.Errorf("rule_files %s is absolute: keep it relative to prometheus.yml so that promtool checks the same files", glob)
			continue
		}
		// Prometheus resolves rule_files relative to its configuration file.
		local := filepath.Join(repoRoot, filepath.Dir(prometheusConfig), glob)
		if matches, _ := filepath.Glob(local); len(matches) == 0 {
			t.Errorf("rule_files %s matches no file in %s", glob, filepath.Dir(prometheusConfig))
		}
		dir := path.Dir(glob)
		source := path.Join(path.Dir(prometheusConfig), dir)
		want := path.Join(path.Dir(configTarget), dir)
		if got := bindMountTarget(t, project, prom, source); got != want {
			t.Errorf("rule_files %s needs %s mounted at %s in the prometheus service, got %q", glob, source, want, got)
		}
	}
}

// grafanaDatasources is a Grafana datasource provisioning file.
type grafanaDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name string `yaml:"name"`
		UID  string `yaml:"uid"`
		Type string `yaml:"type"`
		URL  string `yaml:"url"`
	} `yaml:"datasources"`
}

// grafanaProviders is a Grafana dashboard provisioning file.
type grafanaProviders struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// provisioningFiles lists the YAML files of a provisioning directory, at least one.
func provisioningFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deployments/grafana/provisioning", dir, "*.y*ml"))
	if len(files) == 0 {
		t.Fatalf("deployments/grafana/provisioning/%s has no provisioning file", dir)
	}
	for i, f := range files {
		files[i], _ = filepath.Rel(repoRoot, f)
	}
	return files
}

func TestGrafanaProvisioningIsMounted(t *testing.T) {
	project := loadCompose(t)
	grafana := service(t, project, "grafana")
	if got := bindMountTarget(t, project, grafana, "deployments/grafana/provisioning"); got != "/etc/grafana/provisioning" {
		t.Errorf("grafana mounts deployments/grafana/provisioning at %q, want /etc/grafana/provisioning, where Grafana reads it", got)
	}
}

func TestGrafanaDatasourceIsTheStacksPrometheus(t *testing.T) {
	project := loadCompose(t)
	var found bool
	for _, file := range provisioningFiles(t, "datasources") {
		var ds grafanaDatasources
		readYAML(t, file, &ds)
		if ds.APIVersion != 1 {
			t.Errorf("%s: apiVersion %d, want 1", file, ds.APIVersion)
		}
		for _, d := range ds.Datasources {
			if d.UID != "prometheus" {
				continue
			}
			found = true
			if d.Type != "prometheus" {
				t.Errorf("%s: datasource uid prometheus has type %q", file, d.Type)
			}
			u, err := url.Parse(d.URL)
			if err != nil {
				t.Errorf("%s: url %q: %v", file, d.URL, err)
				continue
			}
			host, port := splitHostPort(t, file+" url", u.Host)
			s, ok := project.Services[host]
			if !ok || !declaresPort(s, port) || !strings.HasPrefix(s.Image, "prom/prometheus:") {
				t.Errorf("%s: datasource url %s is not the stack's prometheus service", file, d.URL)
			}
		}
	}
	if !found {
		t.Error("no provisioned datasource has uid prometheus, which dashboards and alerts may refer to")
	}
}

func TestGrafanaLoadsTheDashboardsDirectory(t *testing.T) {
	project := loadCompose(t)
	grafana := service(t, project, "grafana")
	mounted := bindMountTarget(t, project, grafana, "deployments/grafana/dashboards")
	if mounted == "" {
		t.Fatal("grafana does not mount deployments/grafana/dashboards")
	}
	var paths []string
	for _, file := range provisioningFiles(t, "dashboards") {
		var p grafanaProviders
		readYAML(t, file, &p)
		for _, provider := range p.Providers {
			if provider.Type == "file" {
				paths = append(paths, provider.Options.Path)
			}
		}
	}
	if !slices.Contains(paths, mounted) {
		t.Errorf("no dashboard provider reads %s, where compose mounts the dashboards (providers read %v)", mounted, paths)
	}
	if home := env(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != "" {
		rel, err := filepath.Rel(mounted, home)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("home dashboard %s is outside the mounted dashboards %s", home, mounted)
		} else if _, err := os.Stat(filepath.Join(repoRoot, "deployments/grafana/dashboards", rel)); err != nil {
			t.Errorf("home dashboard %s: %v", home, err)
		}
	}
}

// TestDashboardsSelectTheirDatasource checks every dashboard for what makes it portable: a
// datasource template variable, and panels that use it rather than a hard-coded uid, which
// would break on any Grafana but the one it was exported from.
func TestDashboardsSelectTheirDatasource(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deployments/grafana/dashboards/*.json"))
	if len(files) == 0 {
		t.Fatal("deployments/grafana/dashboards has no dashboard")
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			UID        string `json:"uid"`
			Title      string `json:"title"`
			Templating struct {
				List []struct {
					Name  string `json:"name"`
					Type  string `json:"type"`
					Query any    `json:"query"`
				} `json:"list"`
			} `json:"templating"`
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(data, &dash); err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		name := filepath.Base(file)
		if dash.UID == "" || dash.Title == "" {
			t.Errorf("%s has no uid or title: links to it would change on every load", name)
		}
		if len(dash.Panels) == 0 {
			t.Errorf("%s has no panels", name)
		}
		var variable bool
		for _, v := range dash.Templating.List {
			variable = variable || (v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus")
		}
		if !variable {
			t.Errorf("%s has no datasource variable (name datasource, type datasource, query prometheus)", name)
		}
		var doc any
		_ = json.Unmarshal(data, &doc)
		for _, uid := range datasourceUIDs(doc) {
			if uid != "${datasource}" && uid != "$datasource" && uid != "-- Grafana --" && uid != "grafana" {
				t.Errorf("%s refers to datasource uid %q: use ${datasource}", name, uid)
			}
		}
	}
}

// datasourceUIDs collects the uid of every "datasource" object in a dashboard, at any depth.
func datasourceUIDs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if ds, ok := child.(map[string]any); ok && k == "datasource" {
				if uid, ok := ds["uid"].(string); ok {
					out = append(out, uid)
				}
			}
			if s, ok := child.(string); ok && k == "datasource" && s != "" {
				out = append(out, s) // the old form: a datasource name
			}
			out = append(out, datasourceUIDs(child)...)
		}
	case []any:
		for _, child := range v {
			out = append(out, datasourceUIDs(child)...)
		}
	}
	return out
}
