// Package grafana builds moat's Grafana dashboards with the Grafana
// Foundation SDK. It is a module of its own so that the SDK never enters
// moat's go.mod. The JSON in dashboards/ is generated from it:
//
//	cd deploy/grafana && UPDATE_DASHBOARDS=1 go test ./...
package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// query is one PromQL target and its legend.
type query struct{ expr, legend string }

func series(title, unit string, qs ...query) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Unit(unit).Min(0).Height(8).Span(12)
	for _, q := range qs {
		p.WithTarget(prometheus.NewDataqueryBuilder().Expr(q.expr).LegendFormat(q.legend))
	}
	return p
}

func single(title, unit, expr string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Unit(unit).Height(4).Span(6).
		WithTarget(prometheus.NewDataqueryBuilder().Expr(expr).Instant())
}

func base(uid, title string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).Uid(uid).Tags([]string{"moat"}).
		Refresh("1m").Time("now-6h", "now")
}

// Dashboards returns every dashboard by file name.
func Dashboards() map[string]*dashboard.DashboardBuilder {
	return map[string]*dashboard.DashboardBuilder{
		"coordinator.json": Coordinator(),
		"nodes.json":       Nodes(),
		"models.json":      Models(),
	}
}

// Coordinator shows the coordinator's HTTP traffic, sign-ins, refusals,
// database health and inventory.
func Coordinator() *dashboard.DashboardBuilder {
	return base("moat-coordinator", "moat / Coordinator").
		WithRow(dashboard.NewRowBuilder("Overview")).
		WithPanel(single("Live devices", "none", `sum(moat_coordinator_devices{kind="user",state="live"})`)).
		WithPanel(single("Live nodes", "none", `sum(moat_coordinator_devices{kind="node",state="live"})`)).
		WithPanel(single("Netmap streams", "none", `sum(moat_coordinator_netmap_streams)`)).
		WithPanel(single("Version", "none", `count by (version) (moat_build_info{job="moat-coordinator"})`)).
		WithRow(dashboard.NewRowBuilder("HTTP")).
		WithPanel(series("Requests by route", "reqps",
			query{`sum by (route) (rate(moat_coordinator_http_request_duration_seconds_count{route!="/api/v1/netmap"}[$__rate_interval]))`, "{{route}}"})).
		WithPanel(series("Errors and refusals by status", "reqps",
			query{`sum by (code) (rate(moat_coordinator_http_request_duration_seconds_count{code=~"4..|5.."}[$__rate_interval]))`, "{{code}}"})).
		WithPanel(series("Latency p50 / p99 (streams excluded)", "s",
			query{`histogram_quantile(0.5, sum by (le) (rate(moat_coordinator_http_request_duration_seconds_bucket{route!="/api/v1/netmap"}[$__rate_interval])))`, "p50"},
			query{`histogram_quantile(0.99, sum by (le) (rate(moat_coordinator_http_request_duration_seconds_bucket{route!="/api/v1/netmap"}[$__rate_interval])))`, "p99"})).
		WithPanel(series("Requests in flight", "none", query{`sum(moat_coordinator_http_requests_in_flight)`, "in flight"})).
		WithRow(dashboard.NewRowBuilder("Sign-ins and safety")).
		WithPanel(series("Sign-ins by kind", "none", query{`sum by (kind) (increase(moat_coordinator_logins_total[$__rate_interval]))`, "{{kind}}"})).
		WithPanel(series("Refusals by reason", "none", query{`sum by (reason) (increase(moat_coordinator_refusals_total[$__rate_interval]))`, "{{reason}}"})).
		WithPanel(series("Database errors", "none", query{`sum(increase(moat_coordinator_database_errors_total[$__rate_interval]))`, "errors"})).
		WithPanel(series("Audit ingest lag p50 / p99", "s",
			query{`histogram_quantile(0.5, sum by (le) (rate(moat_coordinator_audit_ingest_lag_seconds_bucket[$__rate_interval])))`, "p50"},
			query{`histogram_quantile(0.99, sum by (le) (rate(moat_coordinator_audit_ingest_lag_seconds_bucket[$__rate_interval])))`, "p99"})).
		WithPanel(series("Netmap recompute p99", "s",
			query{`histogram_quantile(0.99, sum by (le) (rate(moat_coordinator_netmap_recompute_seconds_bucket[$__rate_interval])))`, "p99"})).
		WithPanel(series("Certificate expires in", "s",
			query{`moat_coordinator_tls_certificate_expiry_timestamp_seconds - time()`, "{{instance}}"}))
}

// Nodes shows each node's health: up, lockdown, integrity, audit
// shipping, abuse events and refusals.
func Nodes() *dashboard.DashboardBuilder {
	return base("moat-nodes", "moat / Nodes").
		WithRow(dashboard.NewRowBuilder("Health")).
		WithPanel(single("Nodes up", "none", `sum(up{job="moat-node"})`)).
		WithPanel(single("Lockdown applied", "none", `sum(moat_lockdown_applied)`)).
		WithPanel(single("Models failing integrity", "none", `count(moat_node_model_integrity_ok == 0) or vector(0)`)).
		WithPanel(single("Models stopped", "none", `count(moat_guard_model_available == 0) or vector(0)`)).
		WithRow(dashboard.NewRowBuilder("Lockdown and audit")).
		WithPanel(series("Lockdown drops by node and category", "pps",
			query{`sum by (instance, category) (rate(moat_lockdown_dropped_packets_total[$__rate_interval]))`, "{{instance}} {{category}}"})).
		WithPanel(series("Oldest unshipped audit record", "s",
			query{`moat_node_audit_oldest_unshipped_age_seconds`, "{{instance}}"})).
		WithPanel(series("Unshipped audit bytes", "bytes", query{`moat_node_audit_unshipped_bytes`, "{{instance}}"})).
		WithPanel(series("Abuse events by kind", "none",
			query{`sum by (instance, kind) (increase(moat_guard_abuse_events_total[$__rate_interval]))`, "{{instance}} {{kind}}"})).
		WithRow(dashboard.NewRowBuilder("Guard")).
		WithPanel(series("Refusals by reason", "reqps",
			query{`sum by (reason) (rate(moat_guard_refusals_total[$__rate_interval]))`, "{{reason}}"})).
		WithPanel(series("Requests in flight", "none", query{`sum by (instance) (moat_guard_requests_in_flight)`, "{{instance}}"})).
		WithPanel(series("Resident memory", "bytes", query{`process_resident_memory_bytes{job="moat-node"}`, "{{instance}}"})).
		WithPanel(series("Goroutines", "none", query{`go_goroutines{job="moat-node"}`, "{{instance}}"}))
}

// Models shows model use: requests, tokens and latency by model.
func Models() *dashboard.DashboardBuilder {
	return base("moat-models", "moat / Model use").
		WithRow(dashboard.NewRowBuilder("Use")).
		WithPanel(series("Requests by model", "reqps",
			query{`sum by (model) (rate(moat_guard_requests_total[$__rate_interval]))`, "{{model}}"})).
		WithPanel(series("Errors by model and status", "reqps",
			query{`sum by (model, code) (rate(moat_guard_requests_total{code!~"2.."}[$__rate_interval]))`, "{{model}} {{code}}"})).
		WithPanel(series("Tokens per second by model and direction", "none",
			query{`sum by (model, direction) (rate(moat_guard_tokens_total[$__rate_interval]))`, "{{model}} {{direction}}"})).
		WithPanel(series("Models available", "none", query{`sum by (model) (moat_guard_model_available)`, "{{model}}"})).
		WithRow(dashboard.NewRowBuilder("Latency")).
		WithPanel(series("Time to first token p50 / p95", "s",
			query{`histogram_quantile(0.5, sum by (le, model) (rate(moat_guard_time_to_first_token_seconds_bucket[$__rate_interval])))`, "{{model}} p50"},
			query{`histogram_quantile(0.95, sum by (le, model) (rate(moat_guard_time_to_first_token_seconds_bucket[$__rate_interval])))`, "{{model}} p95"})).
		WithPanel(series("Whole answer p50 / p95", "s",
			query{`histogram_quantile(0.5, sum by (le, model) (rate(moat_guard_request_duration_seconds_bucket[$__rate_interval])))`, "{{model}} p50"},
			query{`histogram_quantile(0.95, sum by (le, model) (rate(moat_guard_request_duration_seconds_bucket[$__rate_interval])))`, "{{model}} p95"}))
}
