package observability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/servicetest"
)

// scrapeJob is the job name Prometheus gives the service in this test.
const scrapeJob = "pingpong"

// The values the test gives the dashboard's variables and Grafana's built-in ones.
var substitutions = map[string]string{
	"__rate_interval": "30s",
	"__range":         "5m",
	"__interval":      "15s",
	"job":             scrapeJob, // the variable's own filter must select the service
}

// alertsUnderLoad are the alerts whose expression matches while the service answers the test's
// load: two thirds of the requests are rejected (not pings, or malformed), which is what
// PingpongRejectedRequestsHigh reports. Every other alert must stay quiet for a healthy service.
var alertsUnderLoad = []string{"PingpongRejectedRequestsHigh"}

// TestDashboardAndAlertsOnRealPrometheus runs the service on an in-process broker under load, a
// real Prometheus scraping it every second with the alert rules loaded, and then evaluates every
// query of the dashboard and every alert expression through Prometheus's HTTP API. It catches
// drift between the metric names and labels the service exports and those the dashboard and the
// rules expect: a query that errors, or that reads the service's metrics and finds no series,
// fails. Broker metrics (kafka_*, kubelet_*) have no exporter here: their queries must only run.
func TestDashboardAndAlertsOnRealPrometheus(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	brokers := startBroker(t)
	svcAddr := startService(t, brokers)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); produceLoad(ctx, t, brokers) }()
	t.Cleanup(func() { <-loadDone }) // after cancel: the load stops with the test
	prom := startPrometheus(t, promBin, svcAddr)

	d := loadDashboard(t)
	rules := loadRules(t)
	var queries []namedQuery
	for _, p := range d.queryPanels() {
		for _, target := range p.Targets {
			queries = append(queries, namedQuery{name: fmt.Sprintf("panel %q query %s", p.Title, target.RefID), expr: substitute(t, d, target.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		if selector, label, ok := labelValuesQuery(v.queryText()); ok {
			queries = append(queries, namedQuery{name: fmt.Sprintf("variable %s (label_values of %s)", v.Name, label), expr: substitute(t, d, selector)})
		}
	}
	for _, r := range rules {
		queries = append(queries, namedQuery{name: "alert " + r.Alert + r.Record, expr: r.Expr, mayBeEmpty: true})
	}
	// Each selector of the service's metrics must find series on its own, so that a label
	// matcher on a value the service never exports (outcome="errror") is caught even where the
	// whole expression is allowed to be empty (an alert that does not fire).
	for _, q := range slices.Clone(queries) {
		for _, sel := range ownSelectors(q.expr) {
			queries = append(queries, namedQuery{name: q.name + ", selector " + sel, expr: sel})
		}
	}

	// Wait until every query that reads the service's metrics finds series: rates need two
	// scrapes, the histograms an observation, the lag a first measurement. A few seconds do;
	// a query still empty after 30 seconds reads something the service does not export.
	deadline := time.Now().Add(30 * time.Second)
	var empty []string
	for {
		var failed []string
		empty = nil
		for _, q := range queries {
			n, err := prom.query(ctx, q.expr)
			switch {
			case err != nil:
				failed = append(failed, fmt.Sprintf("%s: %v\n    %s", q.name, err, q.expr))
			case n == 0 && q.mustFindSeries():
				empty = append(empty, fmt.Sprintf("%s\n    %s", q.name, q.expr))
			}
		}
		if len(failed) > 0 {
			t.Fatalf("Prometheus rejected %d queries:\n%s", len(failed), strings.Join(failed, "\n"))
		}
		if len(empty) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(empty) > 0 {
		t.Fatalf("%d queries over the service's metrics found no series after the load ran (metric or label drift?):\n%s\n\nPrometheus says about the scrape: %s",
			len(empty), strings.Join(empty, "\n"), prom.targetHealth(ctx))
	}
	t.Logf("%d queries of the dashboard and the rules (and their selectors) ran and found the service's series", len(queries))

	// The job variable lists the service's job, so that choosing it selects the service.
	if jobs := prom.labelValues(ctx, t, jobVariableSelector(t, d), "job"); !slices.Contains(jobs, scrapeJob) {
		t.Errorf("the job variable would offer %v, not the service's job %q", jobs, scrapeJob)
	}

	// The rules as Prometheus evaluates them: every rule healthy, and only the expected alerts
	// active (pending: their "for" has not passed in this short test).
	waitForRules(t, ctx, prom, len(rules))
	var active []string
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if active = prom.activeAlerts(ctx, t); containsAll(active, alertsUnderLoad) {
			break
		}
	}
	for _, name := range alertsUnderLoad {
		if !slices.Contains(active, name) {
			t.Errorf("alert %s is not active under a load of two thirds rejected requests; active: %v", name, active)
		}
	}
	for _, name := range active {
		if !slices.Contains(alertsUnderLoad, name) {
			t.Errorf("alert %s is active while the service is healthy", name)
		}
	}
}

func containsAll(set, want []string) bool {
	for _, w := range want {
		if !slices.Contains(set, w) {
			return false
		}
	}
	return true
}

type namedQuery struct {
	name, expr string
	// mayBeEmpty: a whole alert expression is empty while the alert does not fire (its
	// selectors are checked on their own).
	mayBeEmpty bool
}

// mustFindSeries: a query over the service's own metrics must find series; one over broker
// metrics only has to run, as there is no broker exporter here.
func (q namedQuery) mustFindSeries() bool { return !q.mayBeEmpty && ownMetric.MatchString(q.expr) }

// substitute replaces the dashboard's variables as Grafana would with the test's values: a
// variable set to All becomes its allValue.
func substitute(t *testing.T, d dashboard, expr string) string {
	t.Helper()
	values := map[string]string{}
	for k, v := range substitutions {
		values[k] = v
	}
	for _, v := range d.Templating.List {
		if _, set := values[v.Name]; !set && v.IncludeAll {
			values[v.Name] = v.AllValue
		}
	}
	out := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		name := strings.Trim(ref, "${}")
		if v, ok := values[name]; ok {
			return v
		}
		t.Errorf("no test value for $%s in %s", name, expr)
		return ref
	})
	return out
}

// jobVariableSelector is the selector of the job variable's label_values query, substituted.
func jobVariableSelector(t *testing.T, d dashboard) string {
	t.Helper()
	for _, v := range d.Templating.List {
		if selector, label, ok := labelValuesQuery(v.queryText()); ok && v.Name == "job" && label == "job" {
			return substitute(t, d, selector)
		}
	}
	t.Fatal("the dashboard has no job variable of the form label_values(<selector>, job)")
	return ""
}

// labelValuesQuery splits Grafana's label_values(selector, label).
func labelValuesQuery(q string) (selector, label string, ok bool) {
	m := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`).FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

func startBroker(t *testing.T) string {
	t.Helper()
	topics := config.Kafka{TopicPrefix: "dev.pingpong"}.Topics()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics.All()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return strings.Join(cluster.ListenAddrs(), ",")
}

// startService runs the service with its defaults on the broker until the test ends, but with
// exactly-once delivery: it exports every metric of at-least-once and the transaction metrics
// besides, which the dashboard's Exactly once row and PingpongTransactionsAborting read.
func startService(t *testing.T, brokers string) string {
	t.Helper()
	cfg := servicetest.Config(t, strings.Split(brokers, ","))
	cfg.Logging.Level = "warn"
	cfg.Transport.Delivery.Mode = config.DeliveryExactlyOnce
	return servicetest.Start(t, cfg).HTTPAddr()
}

// produceLoad sends requests until ctx ends, a third of each kind: pings, requests that are not
// pings, and malformed ones.
func produceLoad(ctx context.Context, t *testing.T, brokers string) {
	client, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.DefaultProduceTopic("dev.pingpong.requested"))
	if err != nil {
		t.Errorf("load client: %v", err)
		return
	}
	defer client.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		var value string
		switch i % 3 {
		case 0:
			value = fmt.Sprintf(`{"transaction-id": "%d", "payload": {"message": "ping"}}`, i)
		case 1:
			value = fmt.Sprintf(`{"transaction-id": "%d", "payload": {"message": "hello"}}`, i)
		case 2:
			value = fmt.Sprintf(`not json %d`, i)
		}
		client.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(value)}, nil)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// prometheus is a Prometheus server run by the test.
type prometheus struct {
	base string
	http *http.Client
}

// startPrometheus runs Prometheus with a 1s scrape and evaluation interval, the alert rules, and
// its data in a temporary directory, on a free port; it is stopped when the test ends.
func startPrometheus(t *testing.T, bin, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
`, rules, scrapeJob, target)
	if err := os.WriteFile(configFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	output := &servicetest.SyncBuffer{}
	cmd := exec.Command(bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", output.String())
		}
	})

	p := &prometheus{base: "http://" + addr, http: &http.Client{Timeout: 5 * time.Second}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("prometheus exited at start:\n%s", output.String())
		default:
		}
		if resp, err := p.http.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus was not ready on %s within 30s:\n%s", addr, output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type apiResponse struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

func (p *prometheus) get(ctx context.Context, path string, params url.Values) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d, undecodable answer: %w", path, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// query evaluates an instant query and counts the series (or 1 for a scalar) it returns.
func (p *prometheus) query(ctx context.Context, expr string) (int, error) {
	data, err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, err
	}
	var result struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &result); err != nil {
		// A scalar or string result is a single value, not a list.
		return 1, nil //nolint:nilerr // not a vector: one value
	}
	return len(result.Result), nil
}

// labelValues is what Grafana's label_values(selector, label) would list.
func (p *prometheus) labelValues(ctx context.Context, t *testing.T, selector, label string) []string {
	t.Helper()
	data, err := p.get(ctx, "/api/v1/query", url.Values{"query": {fmt.Sprintf("count by (%s) (%s)", label, selector)}})
	if err != nil {
		t.Fatal(err)
	}
	var result struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &result); err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, r := range result.Result {
		values = append(values, r.Metric[label])
	}
	return values
}

// targetHealth is what Prometheus says about its scrape of the service, for failure messages.
func (p *prometheus) targetHealth(ctx context.Context) string {
	data, err := p.get(ctx, "/api/v1/targets", url.Values{})
	if err != nil {
		return err.Error()
	}
	return string(data)
}

type ruleState struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	State     string `json:"state"`
}

func (p *prometheus) rules(ctx context.Context) ([]ruleState, error) {
	data, err := p.get(ctx, "/api/v1/rules", url.Values{})
	if err != nil {
		return nil, err
	}
	var r struct {
		Groups []struct {
			Rules []ruleState `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	var all []ruleState
	for _, g := range r.Groups {
		all = append(all, g.Rules...)
	}
	return all, nil
}

// waitForRules waits until Prometheus has loaded and evaluated every rule, and fails on any rule
// whose evaluation errs.
func waitForRules(t *testing.T, ctx context.Context, p *prometheus, want int) {
	t.Helper()
	for {
		rules, err := p.rules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		evaluated := 0
		for _, r := range rules {
			switch r.Health {
			case "err":
				t.Fatalf("Prometheus fails to evaluate rule %s: %s", r.Name, r.LastError)
			case "ok":
				evaluated++
			}
		}
		if len(rules) == want && evaluated == want {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("Prometheus loaded %d rules and evaluated %d, want %d", len(rules), evaluated, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// activeAlerts are the names of the alerts pending or firing now.
func (p *prometheus) activeAlerts(ctx context.Context, t *testing.T) []string {
	t.Helper()
	rules, err := p.rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rules {
		if r.Type == "alerting" && r.State != "inactive" {
			names = append(names, r.Name)
		}
	}
	return names
}
