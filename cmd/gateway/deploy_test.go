package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/internal/testenv"
)

// exportedMetricNames is every series name the gateway's /metrics can
// carry: the families of internal/metrics and of the collectors serve
// registers, with _bucket/_sum/_count for histograms. It is read from the
// collectors' descriptions, so metrics that have no sample yet count too.
func exportedMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	var collectors []prometheus.Collector
	m := reflect.ValueOf(metrics.New()).Elem()
	histograms := map[prometheus.Collector]bool{}
	for i := range m.NumField() {
		c, ok := m.Field(i).Interface().(prometheus.Collector)
		if !ok || m.Type().Field(i).Name == "Registry" {
			continue
		}
		switch c.(type) {
		case *prometheus.HistogramVec, prometheus.Histogram:
			histograms[c] = true
		}
		collectors = append(collectors, c)
	}
	collectors = append(collectors, newInstancesCollector(nil, nil), newEvalErrorsCollector(nil))
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for _, c := range collectors {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			sub := fqName.FindStringSubmatch(d.String())
			if sub == nil {
				t.Fatalf("no fqName in %s", d)
			}
			names[sub[1]] = true
			if histograms[c] {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[sub[1]+s] = true
				}
			}
		}
	}
	if len(names) < 15 {
		t.Fatalf("found only %d metric names: %v", len(names), names)
	}
	return names
}

var (
	// gatewayName is a gateway metric name in a PromQL expression.
	gatewayName = regexp.MustCompile(`\bgateway_[a-zA-Z0-9_:]+`)
	// selectorName is any name directly followed by a label matcher.
	selectorName = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{`)
)

// checkExprMetrics fails for each metric an expression names that the
// gateway does not export (or that is no gateway metric at all).
func checkExprMetrics(t *testing.T, where, expr string, exported map[string]bool) {
	t.Helper()
	found := gatewayName.FindAllString(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s: query names no gateway metric: %s", where, expr)
	}
	for _, n := range found {
		if !exported[n] {
			t.Errorf("%s: metric %s is not exported by the gateway (query %s)", where, n, expr)
		}
	}
	for _, sub := range selectorName.FindAllStringSubmatch(expr, -1) {
		if !strings.HasPrefix(sub[1], "gateway_") && sub[1] != "by" && sub[1] != "without" {
			t.Errorf("%s: selector %s is not a gateway metric (query %s)", where, sub[1], expr)
		}
	}
}

type grafanaPanel struct {
	ID      int            `json:"id"`
	Title   string         `json:"title"`
	Type    string         `json:"type"`
	Panels  []grafanaPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// TestGrafanaDashboardQueriesExportedMetrics: deploy/grafana/gateway.json
// is valid JSON and every query names only metrics the gateway exports.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	exported := exportedMetricNames(t)
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "deploy/grafana/gateway.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string         `json:"title"`
		UID        string         `json:"uid"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/gateway.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard title %q uid %q: want both set", dash.Title, dash.UID)
	}
	used := map[string]bool{}
	ids := map[int]string{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("panel %q: id %d missing or also used by %q", p.Title, p.ID, other)
			}
			ids[p.ID] = p.Title
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				checkExprMetrics(t, "panel "+p.Title, tg.Expr, exported)
				for _, n := range gatewayName.FindAllString(tg.Expr, -1) {
					used[n] = true
				}
			}
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			checkExprMetrics(t, "variable "+v.Name, q["query"].(string), exported)
		}
	}
	// The panels the dashboard promises: throughput, latency per service,
	// dead letters by reason, lag, instances by state, reloads, retention.
	for _, n := range []string{"gateway_messages_consumed_total", "gateway_dispatch_duration_seconds_bucket", "gateway_dlq_total",
		"gateway_consumer_lag", "gateway_instances", "gateway_rules_reloads_total",
		"gateway_stream_trimmed_total", "gateway_stream_oldest_unfinished_age_seconds"} {
		if !used[n] {
			t.Errorf("no panel queries %s", n)
		}
	}
}

// TestPrometheusAlertRules runs promtool on deploy/prometheus: the rules
// check, their unit tests (alerts_test.yaml), and that every alert names
// only metrics the gateway exports. A missing promtool is a failure.
func TestPrometheusAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus; run scripts/setup.sh): %v", err)
	}
	dir := filepath.Join(testenv.RepoRoot(t), "deploy/prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	exported := exportedMetricNames(t)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			checkExprMetrics(t, "alert "+r.Alert, r.Expr, exported)
		}
	}
	for _, want := range []string{"GatewayConsumerLagGrowing", "GatewayDeadLetterRateHigh", "GatewayServiceNoHealthyInstance",
		"GatewayRulesReloadFailed", "GatewayDiscoveryStale", "GatewayOldestUnfinishedEntryOld"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alerts.yaml has no alert %s (has %v)", want, alerts)
		}
	}
}
