package ui

import "strconv"

// chart is a small bar chart drawn as SVG by the template: only numbers
// computed here reach it, and its look comes from ui.css (the CSP allows
// no inline styles).
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int
}

// bar is one bar of a chart, in SVG user units.
type bar struct {
	X, Y, W, H int
	Label      string // for the tooltip and screen readers
}

const (
	chartHeight = 80
	barWidth    = 10
	barGap      = 2
)

// newChart draws the last len(hourly) hours of requests, oldest first.
func newChart(hourly []int) chart {
	c := chart{Height: chartHeight, Width: len(hourly) * (barWidth + barGap)}
	for _, v := range hourly {
		c.Max = max(c.Max, v)
	}
	for i, v := range hourly {
		h := 0
		if c.Max > 0 {
			h = v * (chartHeight - 1) / c.Max
		}
		if v > 0 {
			h = max(h, 1)
		}
		ago := len(hourly) - 1 - i
		label := strconv.Itoa(v) + " requests, " + strconv.Itoa(ago) + " h ago"
		if ago == 0 {
			label = strconv.Itoa(v) + " requests this hour"
		}
		c.Bars = append(c.Bars, bar{X: i * (barWidth + barGap), Y: chartHeight - h, W: barWidth, H: h, Label: label})
	}
	return c
}
