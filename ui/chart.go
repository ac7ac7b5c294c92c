package ui

import "strconv"

// chart is a small bar chart drawn as SVG by the template: only numbers
// computed here reach it, and its look comes from ui.css (the CSP allows
// no inline styles). Each bar is one hour: the allowed requests, with the
// refused ones stacked on top in another colour.
type chart struct {
	Width, Height int // of the plot, in SVG user units
	Bars          []bar
	Max           int // the tallest bar's total
	Refused       int // refusals over the whole chart
}

// bar is one hour of a chart, in SVG user units.
type bar struct {
	X, W          int
	Y, H          int // the allowed part
	RefY, RefH    int // the refused part, above the allowed one
	Label         string
	Total, Denied int
}

const (
	chartHeight = 120
	barWidth    = 28
	barGap      = 6
)

// newChart draws requests and refusals per hour, oldest first; the last
// entry is the current hour. refused may be shorter than requests (or nil).
func newChart(requests, refused []int) chart {
	c := chart{Height: chartHeight, Width: len(requests) * (barWidth + barGap)}
	for _, v := range requests {
		c.Max = max(c.Max, v)
	}
	for i, total := range requests {
		denied := 0
		if i < len(refused) {
			denied = min(refused[i], total)
		}
		c.Refused += denied
		h := scale(total, c.Max)
		rh := 0
		if denied > 0 {
			rh = max(1, scale(denied, c.Max))
			rh = min(rh, h)
		}
		ago := len(requests) - 1 - i
		label := strconv.Itoa(total) + " requests (" + strconv.Itoa(denied) + " refused), " + strconv.Itoa(ago) + " h ago"
		if ago == 0 {
			label = strconv.Itoa(total) + " requests (" + strconv.Itoa(denied) + " refused) this hour"
		}
		x := i*(barWidth+barGap) + barGap/2
		c.Bars = append(c.Bars, bar{X: x, W: barWidth, Y: chartHeight - (h - rh), H: h - rh,
			RefY: chartHeight - h, RefH: rh, Label: label, Total: total, Denied: denied})
	}
	return c
}

// scale maps v of peak onto the chart's height; any v > 0 shows.
func scale(v, peak int) int {
	if v <= 0 || peak <= 0 {
		return 0
	}
	return max(1, v*(chartHeight-1)/peak)
}

// newSeries draws one bar per value (a day, say), oldest first, each
// with its label; Max is the tallest value, scaled down to an int.
func newSeries(values []int64, labels []string) chart {
	c := chart{Height: chartHeight, Width: len(values) * (barWidth + barGap)}
	var peak int64
	for _, v := range values {
		peak = max(peak, v)
	}
	c.Max = int(min(peak, 1<<31-1))
	for i, v := range values {
		h := 0
		if v > 0 && peak > 0 {
			h = max(1, int(v*int64(chartHeight-1)/peak))
		}
		x := i*(barWidth+barGap) + barGap/2
		c.Bars = append(c.Bars, bar{X: x, W: barWidth, Y: chartHeight - h, H: h, Label: labels[i], Total: int(min(v, 1<<31-1))})
	}
	return c
}
