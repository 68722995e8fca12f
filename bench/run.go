package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
)

// target is a started consumer process.
type target struct {
	p      *proc
	admin  string // gateway admin address; empty for the floor
	warmup string // gateway did not list every instance healthy in time
}

// run performs one measured run and returns what it measured.
func (h *harness) run(ctx context.Context, spec runSpec) (result, error) {
	h.seq++
	id := fmt.Sprintf("%s-%d-%d", h.scenario, os.Getpid(), h.seq)
	stream := "bench:" + id
	dlq := stream + ":dlq"
	dir := filepath.Join(h.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, err
	}
	defer h.rdb.Del(context.Background(), stream, dlq)
	prod := &producer{rdb: h.rdb, stream: stream, total: spec.Messages, routes: max(spec.Routes, 1), realistic: spec.Realistic, rate: spec.Rate, batch: 256, tick: h.tick, keys: spec.OrderKeys}
	// A preloaded closed-loop run measures a backlog's drain: all but the
	// last pipeline of messages are in the stream before the consumer
	// starts, behind a group created at "$" so the consumer sees none of
	// them until the measured window opens (XGROUP SETID 0, below). The
	// producer's CPU and its XADDs then stay out of the consumer's share of
	// the machine, as in a drain after an outage.
	preload := h.preload && spec.Rate == 0 && spec.Messages > prod.batch
	groupStart := "0"
	if preload {
		pre := &producer{rdb: h.rdb, stream: stream, total: spec.Messages - prod.batch, routes: prod.routes, realistic: prod.realistic, batch: prod.batch, keys: prod.keys}
		if err := pre.Run(ctx); err != nil {
			return result{}, fmt.Errorf("preload: %w", err)
		}
		prod.from = pre.total
		prod.sent.Store(int64(pre.total))
		groupStart = "$"
	}
	if err := h.rdb.XGroupCreateMkStream(ctx, stream, spec.Target, groupStart).Err(); err != nil && !isBusyGroup(err) {
		return result{}, fmt.Errorf("create group: %w", err)
	}

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
	t, err := h.startTarget(ctx, spec, dir, stream, dlq, rulesPath)
	if err != nil {
		return result{}, err
	}
	defer t.p.Stop(5 * time.Second)

	// The measured window: from the first XADD (preloaded: from opening
	// the backlog) to the last receipt.
	before, err := readProcStat(t.p.Pid())
	if err != nil {
		return result{}, err
	}
	side, loadStart := h.sideCPU(), loadAvg()
	var prof *profiler
	if h.perf {
		if prof, err = startProfile(h.outDir, id+"."+t.p.name, t.p.Pid()); err != nil {
			return result{}, err
		}
	}
	var sampler *redisSampler
	if spec.SampleRedis > 0 {
		sampler = startRedisSampler(ctx, h.rdb, stream, spec.SampleRedis)
	}
	if preload {
		// The backlog becomes new to the group; the producer's last
		// pipeline (below) wakes a consumer blocked in XREADGROUP.
		if err := h.rdb.XGroupSetID(ctx, stream, spec.Target, "0").Err(); err != nil {
			return result{}, fmt.Errorf("open the preloaded backlog: %w", err)
		}
	}
	runCtx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return prod.Run(gctx) })
	reloads := 0
	if spec.ReloadEvery > 0 {
		g.Go(func() error { return reloadLoop(gctx, rulesPath, spec, &reloads) })
	}
	completed := h.wait(gctx, spec, t.p, prod, rec)
	after, statErr := readProcStat(t.p.Pid())
	sideAfter := h.sideCPU()
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return result{}, err
	}
	if statErr != nil {
		return result{}, fmt.Errorf("%s exited during the run: %w\n%s", t.p.name, statErr, t.p.Output())
	}

	res := h.collect(spec, rec, prod, before, after, completed)
	if sampler != nil {
		res.RedisSamples, res.UsedMemoryBeforeMiB = sampler.finish(ctx), sampler.baseline
	}
	if h.dumpLatency {
		path := filepath.Join(h.outDir, id+"."+t.p.name+".lat")
		if err := rec.dump(path); err != nil {
			fmt.Fprintln(os.Stderr, "dump latency:", err)
		}
	}
	res.Reloads, res.Warmup, res.IdleBefore = reloads, t.warmup, idle
	res.LoadAvg, res.LoadAvgStart = loadAvg(), loadStart
	if res.Received > 0 {
		res.BenchCPUPerMsgUs = float64((sideAfter[0] - side[0]).Microseconds()) / float64(res.Received)
		if h.env.redisPid != 0 {
			res.RedisCPUPerMsgUs = float64((sideAfter[1] - side[1]).Microseconds()) / float64(res.Received)
		}
	}
	if prof != nil {
		if path, err := prof.stop(ctx); err != nil {
			fmt.Fprintf(h.log, "  warning: %v\n", err)
		} else {
			res.Profile = path
		}
	}
	h.finish(ctx, &res, t, id, stream, spec.Target, dlq, rec)
	fmt.Fprintf(h.log, "%s\n", oneLine(res))
	return res, nil
}

// startTarget starts the consumer a run measures and waits until it is
// ready: for the gateway, /readyz and every instance listed healthy.
func (h *harness) startTarget(ctx context.Context, spec runSpec, dir, stream, dlq, rulesPath string) (target, error) {
	f := spec.Fleet
	switch spec.Target {
	case "gateway":
		if h.gatewayBin == "" {
			return target{}, errors.New("gateway binary not built")
		}
		if err := writeAtomic(rulesPath, spec.rules(f.spec.Service, 0)); err != nil {
			return target{}, err
		}
		port, err := freePort()
		if err != nil {
			return target{}, err
		}
		t := target{admin: fmt.Sprintf("127.0.0.1:%d", port)}
		env := append(append([]string(nil), h.gatewayEnv...), spec.Env...)
		t.p, err = startGateway(ctx, h.gatewayBin, dir, env, gatewayConfig{
			RedisAddr: h.env.RedisAddr, Stream: stream, Group: spec.Target, Consumer: "bench-1",
			Batch: h.batch, MaxInflight: h.inflight, DLQStream: dlq, ConsulAddr: h.env.ConsulAddr,
			RulesPath: rulesPath, AdminListen: t.admin, Algorithm: spec.Algorithm, Mode: h.gwConfig,
		})
		if err != nil {
			return target{}, err
		}
		if err := waitInstances(ctx, t.admin, f.spec.Service, len(f.backends)); err != nil {
			fmt.Fprintf(h.log, "  warning: %v; measuring anyway\n", err)
			t.warmup = err.Error()
		}
		return t, nil
	case "floor":
		p, err := startFloor(ctx, h.floorBin, floorConfig{
			redisAddr: h.env.RedisAddr, stream: stream, group: spec.Target, consumer: "floor-1",
			instances: f.addrs, batch: h.batch, inflight: h.inflight,
		})
		return target{p: p}, err
	}
	return target{}, fmt.Errorf("unknown target %q", spec.Target)
}

// finish settles a run after its last receipt: acks, DLQ, the gateway's
// reload counters, peak RSS, then stops the consumer and keeps its output
// if anything went wrong.
func (h *harness) finish(ctx context.Context, res *result, t target, id, stream, group, dlq string, rec *recorder) {
	res.Pending = h.waitAcked(ctx, stream, group)
	res.DLQ, _ = h.rdb.XLen(ctx, dlq).Result()
	if t.admin != "" {
		const ok, failed = `gateway_rules_reloads_total{result="success"}`, `gateway_rules_reloads_total{result="failure"}`
		if m, err := scrapeMetrics(t.admin, ok, failed); err == nil {
			res.ReloadsSeen, res.ReloadErrors = m[ok], m[failed]
		}
		res.StageMeanUs = stageMeans(t.admin)
	}
	if last, err := readProcStat(t.p.Pid()); err == nil {
		res.PeakRSSMiB = float64(last.HWM) / (1 << 20)
	}
	// Late duplicates (redeliveries) count too: read after acks settled.
	res.Duplicates = int(rec.dups.Load())
	if err := t.p.Stop(10 * time.Second); err != nil {
		res.ExitError = err.Error()
	}
	if !res.Completed || res.ExitError != "" || res.Lost > 0 || res.Duplicates > 0 || res.DLQ > 0 || res.Pending != 0 {
		res.LogFile = h.saveLog(id, t.p)
	}
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
