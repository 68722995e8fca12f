package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// latencyChart draws every run's latency-by-percentile curve: x is the
// percentile on a "nines" axis (log10 of 1/(1-q): 90%, 99%, 99.9% equally
// spaced), y is the end-to-end latency on a log axis.
func latencyChart(title string, results []result) []byte {
	const (
		w, h                     = 960, 540
		left, right, top, bottom = 70, 260, 40, 50
	)
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	maxNines, lo, hi := 1.0, math.Inf(1), math.Inf(-1)
	for _, r := range results {
		for _, p := range r.Done.Curve {
			maxNines = math.Max(maxNines, nines(p.Percentile))
			if p.Ms > 0 {
				lo, hi = math.Min(lo, p.Ms), math.Max(hi, p.Ms)
			}
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0.1, 1
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}
	xmax := math.Ceil(maxNines)
	x := func(n float64) float64 { return left + pw*n/xmax }
	y := func(ms float64) float64 {
		v := math.Log10(math.Max(ms, math.Pow(10, ylo)))
		return top + ph*(1-(v-ylo)/(yhi-ylo))
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15">%s: latency until the instance finished (intended send time to receipt + service time)</text>`+"\n", left, html.EscapeString(title))
	for n := 0.0; n <= xmax; n++ {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(n), top, x(n), h-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(n), h-bottom+16, percentileLabel(n))
	}
	for e := ylo; e <= yhi; e++ {
		ms := math.Pow(10, e)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(ms), w-right, y(ms))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g ms</text>`+"\n", left-6, y(ms)+4, ms)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">percentile</text>`+"\n", left+pw/2, h-12)
	for i, r := range results {
		color := palette[i%len(palette)]
		var pts []string
		for _, p := range r.Done.Curve {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(nines(p.Percentile)), y(p.Ms)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		ly := top + 10 + 34*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", w-right+14, ly, w-right+34, ly, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", w-right+40, ly+4, html.EscapeString(r.Name))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555" font-size="11">%.0f msg/s, done p99 %.2f ms</text>`+"\n", w-right+40, ly+18, r.Throughput, r.Done.P99)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// nines maps a percentile (0-100) to log10(1/(1-q)).
func nines(pct float64) float64 {
	q := pct / 100
	if q >= 1 {
		return 7
	}
	return -math.Log10(1 - q)
}

func percentileLabel(n float64) string {
	switch n {
	case 0:
		return "0%"
	case 1:
		return "90%"
	}
	if n == 2 {
		return "99%"
	}
	return "99." + strings.Repeat("9", int(n)-2) + "%"
}
