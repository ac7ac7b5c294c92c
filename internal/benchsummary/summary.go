// Package benchsummary reads the output of `make bench` and prints one
// table of the figures the issues set targets for: each figure, its
// target and whether it is met, so a reader sees the state in one place.
//
// It understands two kinds of lines: Go benchmark results
// ("BenchmarkX-2  10  123 ns/op  4.5 p99-ms", read as metrics named
// "BenchmarkX p99-ms", the -N suffix dropped) and the side-by-side
// scripts' "ratio NAME VALUE …" and "metric NAME VALUE …" lines (named
// "ratio NAME" and "metric NAME"). When a figure appears more than once
// (several runs), the median is reported.
//
// P99 is the benchmarks' side of it: the one way per-call percentiles
// are taken, whichever package the benchmark is in.
package benchsummary

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Target is one figure with a goal.
type Target struct {
	Issue  string  // e.g. "perf 1"
	What   string  // what a reader should know the figure is
	Key    string  // metric name as Parse names it
	AtMost bool    // the goal is an upper bound (else a lower bound)
	Goal   float64 // the bound
	Unit   string
}

// Parse reads bench output and returns every figure it holds, each with
// all the values seen, in order.
func Parse(r io.Reader) (map[string][]float64, error) {
	out := map[string][]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && (f[0] == "ratio" || f[0] == "metric"):
			if v, err := strconv.ParseFloat(f[2], 64); err == nil {
				k := f[0] + " " + f[1]
				out[k] = append(out[k], v)
			}
		case len(f) >= 4 && strings.HasPrefix(f[0], "Benchmark"):
			if _, err := strconv.Atoi(f[1]); err != nil {
				continue // not a result line
			}
			name := f[0]
			if i := strings.LastIndexByte(name, '-'); i > 0 {
				if _, err := strconv.Atoi(name[i+1:]); err == nil {
					name = name[:i]
				}
			}
			for i := 2; i+1 < len(f); i += 2 {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					k := name + " " + f[i+1]
					out[k] = append(out[k], v)
				}
			}
		}
	}
	return out, sc.Err()
}

// Median is the middle of vs (the mean of the two middle ones for an
// even count).
func Median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Write prints the table of targets against figures.
func Write(w io.Writer, targets []Target, figs map[string][]float64) {
	fmt.Fprintf(w, "%-9s %-58s %12s %12s  %s\n", "issue", "figure", "measured", "target", "state")
	for _, t := range targets {
		op := "≥"
		if t.AtMost {
			op = "≤"
		}
		goal := fmt.Sprintf("%s %s%s", op, num(t.Goal), t.Unit)
		vs := figs[t.Key]
		if len(vs) == 0 {
			fmt.Fprintf(w, "%-9s %-58s %12s %12s  not measured\n", t.Issue, t.What, "-", goal)
			continue
		}
		v := Median(vs)
		met := v >= t.Goal
		if t.AtMost {
			met = v <= t.Goal
		}
		state := "MET"
		if !met {
			state = "not met"
		}
		runs := ""
		if len(vs) > 1 {
			runs = fmt.Sprintf(" (median of %d)", len(vs))
		}
		fmt.Fprintf(w, "%-9s %-58s %12s %12s  %s%s\n", t.Issue, t.What, num(v)+t.Unit, goal, state, runs)
	}
}

func num(v float64) string {
	if v == float64(int64(v)) && v >= 10 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
