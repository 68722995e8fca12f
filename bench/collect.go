package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// waitAcked waits up to 3 s for the group to have no pending entries and
// returns how many are left.
func (h *harness) waitAcked(ctx context.Context, stream, group string) int64 {
	var pending int64 = -1
	_ = waitUntil(ctx, 3*time.Second, nil, func() error {
		x, err := h.rdb.XPending(ctx, stream, group).Result()
		if err != nil {
			return err
		}
		if pending = x.Count; pending > 0 {
			return fmt.Errorf("%d pending", pending)
		}
		return nil
	})
	return pending
}

// collect turns a finished run's counters into a result.
func (h *harness) collect(spec runSpec, rec *recorder, prod *producer, before, after procStat, completed bool) result {
	f := spec.Fleet
	res := result{
		Scenario: h.scenario, Name: spec.Name, Target: spec.Target, Algorithm: spec.Algorithm,
		Instances: len(f.backends), Latency: f.spec.Latency.String(), Slow: f.spec.Slow,
		Offered: spec.Rate, Messages: spec.Messages, Received: int(rec.Distinct()),
		Lost: rec.lost(), Completed: completed,
	}
	receipt, done := rec.latencies()
	res.E2E, res.Done = summarize(receipt), summarize(done)
	if spec.Target == "gateway" {
		res.Routes = spec.Routes
	}
	if first, last := prod.started.Load(), rec.lastRecv.Load(); first > 0 && last > first {
		res.ElapsedSec = time.Duration(last - first).Seconds()
		res.Throughput = float64(res.Received) / res.ElapsedSec
	}
	cpu := after.CPU - before.CPU
	res.CPUSec = cpu.Seconds()
	if res.Received > 0 {
		res.CPUPerMsgUs = float64(cpu.Microseconds()) / float64(res.Received)
	}
	var total int64
	for i := range rec.instances {
		total += rec.instances[i].Load()
	}
	stats := f.stats()
	for i := range rec.instances {
		n := rec.instances[i].Load()
		sh := instanceShare{ID: f.ids[i], Slow: i < f.spec.Slow, Received: n, MaxInFlight: stats[i].MaxInFlight}
		if total > 0 {
			sh.Share = float64(n) / float64(total)
		}
		res.PerInstance = append(res.PerInstance, sh)
	}
	return res
}

func oneLine(r result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s recv %d/%d in %.2fs = %.0f msg/s | p50 %.2f p99 %.2f p99.9 %.2f ms | rss %.1f MiB | cpu %.1f us/msg",
		r.Name, r.Received, r.Messages, r.ElapsedSec, r.Throughput, r.E2E.P50, r.E2E.P99, r.E2E.P999, r.PeakRSSMiB, r.CPUPerMsgUs)
	if r.Lost > 0 || r.Duplicates > 0 || r.DLQ > 0 || r.Pending > 0 {
		fmt.Fprintf(&b, " | lost %d dup %d dlq %d pending %d", r.Lost, r.Duplicates, r.DLQ, r.Pending)
	}
	if len(r.StageMeanUs) > 0 {
		b.WriteString("\n  stages (mean us):")
		for _, st := range gatewayStages {
			if v, ok := r.StageMeanUs[st]; ok {
				fmt.Fprintf(&b, " %s %.1f", st, v)
			}
		}
	}
	return b.String()
}

// gatewayStages are gateway_stage_seconds's stages in pipeline order.
var gatewayStages = []string{"read", "match", "wait_slot", "handoff", "dispatch", "settle", "ack"}

// stageMeans scrapes the gateway's mean time per stage, in µs; nil when
// the gateway exports none (an older build).
func stageMeans(admin string) map[string]float64 {
	var want []string
	for _, st := range gatewayStages {
		want = append(want, `gateway_stage_seconds_sum{stage="`+st+`"}`, `gateway_stage_seconds_count{stage="`+st+`"}`)
	}
	m, err := scrapeMetrics(admin, want...)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for _, st := range gatewayStages {
		if n := m[`gateway_stage_seconds_count{stage="`+st+`"}`]; n > 0 {
			out[st] = 1e6 * m[`gateway_stage_seconds_sum{stage="`+st+`"}`] / n
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
