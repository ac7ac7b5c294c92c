package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	unshippedBytesDesc = prometheus.NewDesc("moat_node_audit_unshipped_bytes",
		"Bytes of the audit spool not yet delivered to the coordinator.", nil, nil)
	unshippedAgeDesc = prometheus.NewDesc("moat_node_audit_oldest_unshipped_age_seconds",
		"Age of the oldest audit record not yet delivered to the coordinator; 0 when all are.", nil, nil)
)

// Collector reports, at each scrape, how far the shipper of the spool in
// dir is behind: the bytes not yet delivered and the age of the oldest
// record among them (the audit-shipping-stalled alert watches it).
func Collector(dir string) prometheus.Collector { return lagCollector(dir) }

type lagCollector string

func (lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- unshippedBytesDesc
	ch <- unshippedAgeDesc
}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	bytes, age, err := shippingLag(string(c), time.Now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(unshippedBytesDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(unshippedBytesDesc, prometheus.GaugeValue, float64(bytes))
	ch <- prometheus.MustNewConstMetric(unshippedAgeDesc, prometheus.GaugeValue, age.Seconds())
}

// shippingLag returns the undelivered bytes of the spool in dir and the
// age at now of the first undelivered record.
func shippingLag(dir string, now time.Time) (int64, time.Duration, error) {
	off, err := storedOffset(dir)
	if err != nil {
		return 0, 0, err
	}
	f, err := os.Open(filepath.Join(dir, SpoolFile))
	if os.IsNotExist(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() <= off {
		return 0, 0, err
	}
	if _, err := f.Seek(off, 0); err != nil {
		return 0, 0, err
	}
	line, err := bufio.NewReaderSize(f, 64<<10).ReadSlice('\n')
	var rec struct {
		Time time.Time `json:"time"`
	}
	if err != nil || json.Unmarshal(line, &rec) != nil || rec.Time.IsZero() {
		return fi.Size() - off, 0, nil // a line longer than 64 KiB or being written: age unknown
	}
	return fi.Size() - off, max(now.Sub(rec.Time), 0), nil
}
