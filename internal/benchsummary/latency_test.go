package benchsummary

import (
	"slices"
	"testing"
	"time"
)

// TestLatencies checks the histogram's percentiles against sorted samples.
func TestLatencies(t *testing.T) {
	h := NewLatencies()
	var ds []time.Duration
	for i := range 10000 {
		d := time.Duration(i*i%99991) * 37
		ds = append(ds, d)
		h.Add(d)
	}
	slices.Sort(ds)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want, got := ds[int(q*float64(len(ds)-1))], h.At(q)
		if got < want || float64(got) > float64(want)*1.016+1 {
			t.Errorf("At(%v) = %v, want %v within 1.6 %%", q, got, want)
		}
	}
	if h.Least() != ds[0] {
		t.Errorf("least %v, want %v", h.Least(), ds[0])
	}
}
