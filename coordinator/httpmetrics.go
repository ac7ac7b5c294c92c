package coordinator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatmesh/moat/coordinator/store"
)

// opsMetrics are the metrics operators watch the coordinator by: HTTP
// requests by route, audit ingest lag, and (through the collectors of
// Server.opsCollectors) database errors and the device inventory.
type opsMetrics struct {
	httpDuration *prometheus.HistogramVec // route, method, code
	auditLag     prometheus.Histogram
}

func newOpsMetrics() opsMetrics {
	return opsMetrics{
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "moat_coordinator_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern, method and status code (netmap streams count their whole life).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "code"}),
		auditLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "moat_coordinator_audit_ingest_lag_seconds",
			Help:    "Time from a model request on a node to its audit record being stored by the coordinator.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}),
	}
}

func (m *opsMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.httpDuration, m.auditLag}
}

// observeHTTP records one answered request. Labels come from the route
// table and a fixed list of methods, so clients cannot make series up.
func (m *opsMetrics) observeHTTP(route, method string, status int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions:
	default:
		method = "other"
	}
	m.httpDuration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

// observeAuditLag records how late the records of a stored batch are.
func (s *Server) observeAuditLag(recs []*store.AuditRecord) {
	now := s.cfg.Now()
	for _, r := range recs {
		s.mx.auditLag.Observe(max(now.Sub(r.Time), 0).Seconds())
	}
}

// opsCollectors are read when scraped: requests in flight, the store's
// error count and the inventory of devices and people.
func (s *Server) opsCollectors() []prometheus.Collector {
	dbErrors := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "moat_coordinator_database_errors_total",
		Help: "Database operations that failed in the database itself (unreachable, timed out, full); not-found and conflict answers do not count.",
	}, func() float64 { return float64(s.store.Errors()) })
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "moat_coordinator_http_requests_in_flight", Help: "HTTP requests being answered, netmap streams included.",
	}, func() float64 { return float64(s.InFlight()) })
	return []prometheus.Collector{dbErrors, inFlight, inventory{s}}
}

var (
	devicesDesc = prometheus.NewDesc("moat_coordinator_devices",
		"Devices known to the coordinator by kind (user, node) and state (live, revoked, expired, disabled: the owner is).",
		[]string{"kind", "state"}, nil)
	usersDesc = prometheus.NewDesc("moat_coordinator_users",
		"People known to the coordinator by state (active, disabled).", []string{"state"}, nil)
)

// inventory counts devices and people in the store at each scrape.
type inventory struct{ s *Server }

func (inventory) Describe(ch chan<- *prometheus.Desc) { ch <- devicesDesc; ch <- usersDesc }

func (v inventory) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	users, err := v.s.store.Users(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(usersDesc, err)
		return
	}
	devices, err := v.s.store.Devices(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(devicesDesc, err)
		return
	}
	owners := make(map[string]*store.User, len(users))
	states := map[string]float64{"active": 0, "disabled": 0}
	for _, u := range users {
		owners[u.ID] = u
		states[map[bool]string{false: "active", true: "disabled"}[u.Disabled]]++
	}
	for state, n := range states {
		ch <- prometheus.MustNewConstMetric(usersDesc, prometheus.GaugeValue, n, state)
	}
	counts := map[[2]string]float64{}
	for _, kind := range []store.DeviceKind{store.KindUser, store.KindNode} {
		for _, state := range livenessNames {
			counts[[2]string{string(kind), state}] = 0
		}
	}
	now := v.s.cfg.Now()
	for _, d := range devices {
		counts[[2]string{string(d.Kind), livenessNames[d.Liveness(owners[d.UserID], now)]}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, n, k[0], k[1])
	}
}

var livenessNames = map[store.Liveness]string{
	store.DeviceLive: "live", store.DeviceRevoked: "revoked", store.DeviceExpired: "expired", store.OwnerDisabled: "disabled",
}

// CertificateExpiry is the gauge
// moat_coordinator_tls_certificate_expiry_timestamp_seconds: when the
// serving certificate's leaf expires, for the certificate-expiry alert.
// cmd/moat-coordinator passes it in Config.Collectors.
func CertificateExpiry(cert tls.Certificate) (prometheus.Collector, error) {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "moat_coordinator_tls_certificate_expiry_timestamp_seconds",
		Help: "When the coordinator's TLS certificate expires, as a Unix time.",
	})
	g.Set(float64(leaf.NotAfter.Unix()))
	return g, nil
}
