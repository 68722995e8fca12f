package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// harness runs measured runs against one environment.
type harness struct {
	env        *env
	rdb        *redis.Client
	gatewayBin string // empty until built
	repoRoot   string
	dir        string // temp dir for configs and rules
	batch      int
	inflight   int
	log        io.Writer // progress lines
	scenario   string
	seq        int
	fleets     []*fleet
	tick       time.Duration // open-loop producer wake-up period
	outDir     string
	gatewayEnv []string // extra GATEWAY_* settings for the gateway process
	perf       bool     // profile consumers with perf during each run
	floorBin   string   // empty: this executable
	waitIdle   float64  // before each run, wait (≤1 min) for this idle fraction
}

// run performs one measured run and returns what it measured.
func (h *harness) run(ctx context.Context, spec runSpec) (result, error) {
	h.seq++
	id := fmt.Sprintf("%s-%d-%d", h.scenario, os.Getpid(), h.seq)
	stream := "bench:" + id
	dlq := stream + ":dlq"
	group := spec.Target
	dir := filepath.Join(h.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, err
	}
	if err := h.rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil && !isBusyGroup(err) {
		return result{}, fmt.Errorf("create group: %w", err)
	}
	defer h.rdb.Del(context.Background(), stream, dlq)

	idle, err := waitIdle(ctx, h.waitIdle, time.Minute)
	if err != nil {
		return result{}, err
	}
	f := spec.Fleet
	rec := newRecorder(spec.Messages, len(f.backends))
	f.record(rec)
	defer f.record(nil)
	for _, b := range f.backends {
		b.ResetMaxInFlight()
	}

	rulesPath := filepath.Join(dir, "rules.yaml")
	var p *proc
	var warmup string
	switch spec.Target {
	case "gateway":
		if h.gatewayBin == "" {
			return result{}, errors.New("gateway binary not built")
		}
		if err := writeAtomic(rulesPath, rulesYAML(spec.Routes, f.spec.Service, 0)); err != nil {
			return result{}, err
		}
		adminPort, err := freePort()
		if err != nil {
			return result{}, err
		}
		p, err = startGateway(ctx, h.gatewayBin, dir, h.gatewayEnv, gatewayConfig{
			RedisAddr: h.env.RedisAddr, Stream: stream, Group: group, Consumer: "bench-1",
			Batch: h.batch, MaxInflight: h.inflight, DLQStream: dlq, ConsulAddr: h.env.ConsulAddr,
			RulesPath: rulesPath, AdminListen: fmt.Sprintf("127.0.0.1:%d", adminPort), Algorithm: spec.Algorithm,
		})
		if err != nil {
			return result{}, err
		}
		spec.adminAddr = fmt.Sprintf("127.0.0.1:%d", adminPort)
		if err := waitInstances(ctx, spec.adminAddr, f.spec.Service, len(f.backends)); err != nil {
			fmt.Fprintf(h.log, "  warning: %v; measuring anyway\n", err)
			warmup = err.Error()
		}
	case "floor":
		p, err = startFloor(ctx, h.floorBin, floorConfig{
			redisAddr: h.env.RedisAddr, stream: stream, group: group, consumer: "floor-1",
			instances: f.addrs, batch: h.batch, inflight: h.inflight,
		})
		if err != nil {
			return result{}, err
		}
	default:
		return result{}, fmt.Errorf("unknown target %q", spec.Target)
	}
	defer p.Stop(5 * time.Second)

	before, err := readProcStat(p.Pid())
	if err != nil {
		return result{}, err
	}
	side := h.sideCPU()
	loadStart := loadAvg()
	var prof *profiler
	if h.perf {
		if prof, err = startProfile(h.outDir, id+"."+p.name, p.Pid()); err != nil {
			return result{}, err
		}
	}
	prod := &producer{rdb: h.rdb, stream: stream, total: spec.Messages, routes: max(spec.Routes, 1), rate: spec.Rate, batch: 256, tick: h.tick}
	runCtx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return prod.Run(gctx) })
	reloads := 0
	if spec.ReloadEvery > 0 {
		g.Go(func() error { return reloadLoop(gctx, rulesPath, spec, &reloads) })
	}
	completed := h.wait(gctx, spec, p, prod, rec)
	after, statErr := readProcStat(p.Pid())
	sideAfter := h.sideCPU()
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return result{}, err
	}
	if statErr != nil {
		return result{}, fmt.Errorf("%s exited during the run: %w\n%s", p.name, statErr, p.Output())
	}

	res := h.collect(spec, rec, prod, before, after, completed)
	res.Reloads = reloads
	if prof != nil {
		if path, err := prof.stop(ctx); err != nil {
			fmt.Fprintf(h.log, "  warning: %v\n", err)
		} else {
			res.Profile = path
		}
	}
	res.Warmup = warmup
	if res.Received > 0 {
		res.BenchCPUPerMsgUs = float64((sideAfter[0] - side[0]).Microseconds()) / float64(res.Received)
		if h.env.redisPid != 0 {
			res.RedisCPUPerMsgUs = float64((sideAfter[1] - side[1]).Microseconds()) / float64(res.Received)
		}
	}
	res.LoadAvg, res.LoadAvgStart = loadAvg(), loadStart
	res.IdleBefore = idle
	pending := h.waitAcked(ctx, stream, group)
	res.Pending = pending
	res.DLQ, _ = h.rdb.XLen(ctx, dlq).Result()
	if spec.adminAddr != "" {
		if m, err := scrapeMetrics(spec.adminAddr, `gateway_rules_reloads_total{result="success"}`, `gateway_rules_reloads_total{result="failure"}`); err == nil {
			res.ReloadsSeen = m[`gateway_rules_reloads_total{result="success"}`]
			res.ReloadErrors = m[`gateway_rules_reloads_total{result="failure"}`]
		}
	}
	if last, err := readProcStat(p.Pid()); err == nil {
		res.PeakRSSMiB = float64(last.HWM) / (1 << 20)
	}
	// Late duplicates (redeliveries) count too: read after acks settled.
	res.Duplicates = int(rec.dups.Load())
	if err := p.Stop(10 * time.Second); err != nil {
		res.ExitError = err.Error()
	}
	if !res.Completed || res.ExitError != "" || res.Lost > 0 || res.Duplicates > 0 || res.DLQ > 0 || res.Pending != 0 {
		res.LogFile = h.saveLog(id, p)
	}
	fmt.Fprintf(h.log, "%s\n", oneLine(res))
	return res, nil
}

// wait returns true once every message has arrived, false when ctx ends
// or the consumer dies first. It prints a progress line every second.
func (h *harness) wait(ctx context.Context, spec runSpec, p *proc, prod *producer, rec *recorder) bool {
	check := time.NewTicker(5 * time.Millisecond)
	defer check.Stop()
	start := time.Now()
	lastPrint, lastRecv := start, int64(0)
	for {
		select {
		case <-ctx.Done():
			return false
		case <-check.C:
		}
		got := rec.Distinct()
		if got >= int64(spec.Messages) {
			return true
		}
		if p.Exited() {
			return false
		}
		if now := time.Now(); now.Sub(lastPrint) >= time.Second {
			st, _ := readProcStat(p.Pid())
			rate := float64(got-lastRecv) / now.Sub(lastPrint).Seconds()
			fmt.Fprintf(h.log, "  [%s %s] %4.0fs sent %d/%d recv %d (%.0f msg/s) rss %.1f MiB cpu %.1fs\n",
				h.scenario, spec.Name, now.Sub(start).Seconds(), prod.sent.Load(), spec.Messages, got, rate,
				float64(st.RSS)/(1<<20), st.CPU.Seconds())
			lastPrint, lastRecv = now, got
		}
	}
}

// saveLog keeps the consumer's output tail beside the results when a run
// went wrong, and returns its path ("" if it could not be written).
func (h *harness) saveLog(id string, p *proc) string {
	if err := os.MkdirAll(h.outDir, 0o755); err != nil {
		return ""
	}
	path := filepath.Join(h.outDir, id+"."+p.name+".log")
	if err := os.WriteFile(path, []byte(p.Output()), 0o644); err != nil {
		return ""
	}
	return path
}

// sideCPU is the CPU time used so far by the bench process itself
// (producer and backends) and by redis-server (when started here): the
// other tenants of the machine's cores.
func (h *harness) sideCPU() [2]time.Duration {
	var out [2]time.Duration
	if s, err := readProcStat(os.Getpid()); err == nil {
		out[0] = s.CPU
	}
	if h.env.redisPid != 0 {
		if s, err := readProcStat(h.env.redisPid); err == nil {
			out[1] = s.CPU
		}
	}
	return out
}

// loadAvg is /proc/loadavg's 1-minute figure: how busy the machine was
// with everything, including work that is not this benchmark.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	fmt.Sscanf(string(b), "%f", &v)
	return v
}

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

// reloadLoop rewrites the rules file every spec.ReloadEvery until ctx ends.
func reloadLoop(ctx context.Context, path string, spec runSpec, count *int) error {
	t := time.NewTicker(spec.ReloadEvery)
	defer t.Stop()
	for gen := 1; ; gen++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := writeAtomic(path, rulesYAML(spec.Routes, spec.Fleet.spec.Service, gen)); err != nil {
			return err
		}
		*count = gen
	}
}

func oneLine(r result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s recv %d/%d in %.2fs = %.0f msg/s | p50 %.2f p99 %.2f p99.9 %.2f ms | rss %.1f MiB | cpu %.1f us/msg",
		r.Name, r.Received, r.Messages, r.ElapsedSec, r.Throughput, r.E2E.P50, r.E2E.P99, r.E2E.P999, r.PeakRSSMiB, r.CPUPerMsgUs)
	if r.Lost > 0 || r.Duplicates > 0 || r.DLQ > 0 || r.Pending > 0 {
		fmt.Fprintf(&b, " | lost %d dup %d dlq %d pending %d", r.Lost, r.Duplicates, r.DLQ, r.Pending)
	}
	return b.String()
}

// fleetFor returns a running fleet matching spec, starting it on first use.
func (h *harness) fleetFor(ctx context.Context, spec fleetSpec) (*fleet, error) {
	for _, f := range h.fleets {
		if f.spec == spec {
			return f, nil
		}
	}
	f, err := startFleet(ctx, h.env.ConsulAddr, spec)
	if err != nil {
		return nil, err
	}
	h.fleets = append(h.fleets, f)
	return f, nil
}

func (h *harness) closeFleets() {
	for _, f := range h.fleets {
		_ = f.Close()
	}
	h.fleets = nil
}

// svc names a service uniquely per bench process, so runs sharing a
// Consul agent (-consul) never see each other's instances.
func (h *harness) svc(name string) string { return fmt.Sprintf("%s-%d", name, os.Getpid()) }
