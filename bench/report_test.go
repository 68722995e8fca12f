package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCompareMatchesTrialAndRate(t *testing.T) {
	mk := func(name, target string, trial int, offered, tput, p99 float64) result {
		return result{Name: name, Target: target, Trial: trial, Offered: offered, Throughput: tput,
			E2E: latencySummary{P99: p99}, CPUPerMsgUs: 10, PeakRSSMiB: 20}
	}
	results := []result{
		mk("floor", "floor", 1, 0, 1000, 5),
		mk("floor@half", "floor", 1, 500, 500, 2),
		mk("gateway", "gateway", 1, 0, 900, 9),
		mk("gateway@half", "gateway", 1, 500, 500, 3),
		mk("floor", "floor", 2, 0, 1000, 5),
		mk("gateway", "gateway", 2, 0, 800, 9),
	}
	got := compare(results)
	want := []struct {
		name  string
		trial int
		floor string
		ratio float64
	}{{"gateway", 1, "floor", 0.9}, {"gateway@half", 1, "floor@half", 1}, {"gateway", 2, "floor", 0.8}}
	if len(got) != len(want) {
		t.Fatalf("compare() = %+v, want %d comparisons", got, len(want))
	}
	for i, w := range want {
		c := got[i]
		if c.Name != w.name || c.Trial != w.trial || c.Floor != w.floor || c.ThroughputRatio != w.ratio {
			t.Errorf("compare()[%d] = %+v, want %+v", i, c, w)
		}
	}
	if got[1].P99DeltaMs != 1 {
		t.Errorf("p99 delta = %v, want 1", got[1].P99DeltaMs)
	}
	var b bytes.Buffer
	printMedians(&b, got)
	if !strings.Contains(b.String(), "| gateway | 2 | 0.85x | n/a (closed loop)") {
		t.Errorf("printMedians:\n%s", b.String())
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
