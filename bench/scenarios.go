package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msgroute/gateway/internal/backend"
)

// scenario runs a set of measured runs and returns their results (also the
// ones finished before an error).
type scenario func(ctx context.Context, h *harness, o options) ([]result, error)

var scenarios = map[string]scenario{
	"floor":         floorScenario,
	"throughput":    throughputScenario,
	"latency":       latencyScenario,
	"slow":          slowScenario,
	"rules":         rulesScenario,
	"reload":        reloadScenario,
	"ordered":       orderedScenario,
	"retention":     retentionScenario,
	"batch":         batchScenario,
	"batch-latency": batchLatencyScenario,
}

func scenarioNames() []string {
	var n []string
	for k := range scenarios {
		n = append(n, k)
	}
	slices.Sort(n)
	return append(n, "all")
}

var errNoGateway = errors.New("gateway binary unavailable (cmd/gateway missing or failed to build); only floor runs done")

// uniformFleet is the fleet of -instances identical backends at -latency.
func (h *harness) uniformFleet(ctx context.Context, o options) (*fleet, error) {
	lat, err := backend.ParseLatency(o.latency)
	if err != nil {
		return nil, fmt.Errorf("-latency: %w", err)
	}
	return h.fleetFor(ctx, fleetSpec{Service: h.svc("bench"), Instances: o.instances, Latency: lat})
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// floorScenario measures the floor alone: closed-loop drain, then open loop
// at half that rate. It needs no gateway.
func floorScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	f, err := h.uniformFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	tp, err := h.run(ctx, runSpec{Name: "floor", Target: "floor", Fleet: f, Messages: orDefault(o.messages, 200_000), Timeout: o.timeout})
	if err != nil {
		return nil, err
	}
	rate := orDefault(o.rate, tp.Throughput/2)
	lat, err := h.run(ctx, runSpec{Name: "floor@half", Target: "floor", Fleet: f, Rate: rate, Messages: int(rate * o.duration.Seconds()), Timeout: o.timeout})
	return collectOK([]result{tp}, lat, err)
}

// throughputScenario drains the same number of messages through the floor
// and through the gateway with -routes routes.
func throughputScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	f, err := h.uniformFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	n := orDefault(o.messages, 200_000)
	return h.runAll(ctx, runSpec{Name: "floor", Target: "floor", Fleet: f, Messages: n, Timeout: o.timeout},
		runSpec{Name: fmt.Sprintf("gateway/%d-%s-routes", o.routes, o.ruleset), Target: "gateway", Fleet: f, Messages: n, Routes: o.routes, Realistic: o.ruleset == "realistic", Timeout: o.timeout})
}

// latencyScenario measures the floor's throughput, then runs floor and
// gateway open-loop at half of it (or -rate) for -duration.
func latencyScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	f, err := h.uniformFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	var out []result
	rate := o.rate
	if rate == 0 {
		probe, err := h.run(ctx, runSpec{Name: "floor/probe", Target: "floor", Fleet: f, Messages: orDefault(o.messages, 100_000), Timeout: o.timeout})
		if err != nil {
			return nil, err
		}
		out = append(out, probe)
		rate = probe.Throughput / 2
	}
	n := int(rate * o.duration.Seconds())
	fl, err := h.run(ctx, runSpec{Name: "floor@half", Target: "floor", Fleet: f, Rate: rate, Messages: n, Timeout: o.timeout})
	if out, err = collectOK(out, fl, err); err != nil {
		return out, err
	}
	if h.gatewayBin == "" {
		return out, errNoGateway
	}
	gw, err := h.run(ctx, runSpec{Name: "gateway@half", Target: "gateway", Fleet: f, Rate: rate, Messages: n, Routes: o.routes, Realistic: o.ruleset == "realistic", Timeout: o.timeout})
	return collectOK(out, gw, err)
}

// slowScenario: -instances instances, one -slow-factor times slower, at a
// fixed rate, once per balancer algorithm; the floor's round robin as the
// reference; and a baseline with only the fast instances.
func slowScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	fast, err := backend.ParseLatency(o.slowLat)
	if err != nil {
		return nil, fmt.Errorf("-slow-latency: %w", err)
	}
	mixed, err := h.fleetFor(ctx, fleetSpec{Service: h.svc("bench-slow"), Instances: o.instances, Latency: fast, Slow: 1, SlowFactor: o.slowFactor})
	if err != nil {
		return nil, err
	}
	rate := orDefault(o.rate, 2000)
	n := int(rate * o.duration.Seconds())
	fl, err := h.run(ctx, runSpec{Name: "floor/round-robin", Target: "floor", Fleet: mixed, Rate: rate, Messages: n, Timeout: o.timeout})
	if err != nil {
		return nil, err
	}
	out := []result{fl}
	if h.gatewayBin == "" {
		return out, errNoGateway
	}
	for _, alg := range strings.Split(o.algorithms, ",") {
		r, err := h.run(ctx, runSpec{Name: "gateway/" + alg, Target: "gateway", Fleet: mixed, Rate: rate, Messages: n, Routes: 1, Algorithm: alg, Timeout: o.timeout})
		if out, err = collectOK(out, r, err); err != nil {
			return out, err
		}
	}
	fastOnly, err := h.fleetFor(ctx, fleetSpec{Service: h.svc("bench-fast"), Instances: o.instances - 1, Latency: fast})
	if err != nil {
		return out, err
	}
	r, err := h.run(ctx, runSpec{Name: fmt.Sprintf("gateway/%d-fast-only", o.instances-1), Target: "gateway", Fleet: fastOnly, Rate: rate, Messages: n, Routes: 1, Timeout: o.timeout})
	return collectOK(out, r, err)
}

// rulesScenario drains messages through the gateway with each route count.
func rulesScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	f, err := h.uniformFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	n := orDefault(o.messages, 100_000)
	fl, err := h.run(ctx, runSpec{Name: "floor", Target: "floor", Fleet: f, Messages: n, Timeout: o.timeout})
	if err != nil {
		return nil, err
	}
	out := []result{fl}
	if h.gatewayBin == "" {
		return out, errNoGateway
	}
	for _, s := range strings.Split(o.ruleCounts, ",") {
		routes, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || routes < 1 {
			return out, fmt.Errorf("-rule-counts: bad count %q", s)
		}
		r, err := h.run(ctx, runSpec{Name: fmt.Sprintf("gateway/%d-routes", routes), Target: "gateway", Fleet: f, Messages: n, Routes: routes, Timeout: o.timeout})
		if out, err = collectOK(out, r, err); err != nil {
			return out, err
		}
	}
	return out, nil
}

// reloadScenario runs the floor and the gateway open-loop at -rate, then
// the gateway again with the rules file rewritten every -reload-every;
// every message must arrive exactly once.
func reloadScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	f, err := h.uniformFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	rate := orDefault(o.rate, 5000)
	n := int(rate * o.duration.Seconds())
	return h.runAll(ctx, runSpec{Name: "floor", Target: "floor", Fleet: f, Rate: rate, Messages: n, Timeout: o.timeout},
		runSpec{Name: "gateway/steady", Target: "gateway", Fleet: f, Rate: rate, Messages: n, Routes: o.routes, Timeout: o.timeout},
		runSpec{Name: "gateway/reloading", Target: "gateway", Fleet: f, Rate: rate, Messages: n, Routes: o.routes, ReloadEvery: o.reloadEvery, Timeout: o.timeout})
}

// retentionScenario runs the gateway open-loop at -rate (10000/s) for
// -duration twice, with consumer.retention off and acked, sampling the
// stream's XLEN and Redis's used_memory every second.
func retentionScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	if h.gatewayBin == "" {
		return nil, errNoGateway
	}
	f, err := h.uniformFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	rate := orDefault(o.rate, 10000)
	n := int(rate * o.duration.Seconds())
	var out []result
	for _, mode := range []string{"off", "acked"} {
		r, err := h.run(ctx, runSpec{Name: "gateway/retention-" + mode, Target: "gateway", Fleet: f, Rate: rate,
			Messages: n, Routes: o.routes, Timeout: o.timeout, SampleRedis: time.Second,
			Env: []string{"GATEWAY_CONSUMER_RETENTION=" + mode}})
		if out, err = collectOK(out, r, err); err != nil {
			return out, err
		}
		printRedisSamples(h.log, r.Name, r.UsedMemoryBeforeMiB, r.RedisSamples)
	}
	return out, nil
}

// runAll runs floor, then each gateway run in order (none without a
// gateway binary: errNoGateway), and returns the results so far at the
// first error.
func (h *harness) runAll(ctx context.Context, floor runSpec, gateways ...runSpec) ([]result, error) {
	fl, err := h.run(ctx, floor)
	if err != nil {
		return nil, err
	}
	out := []result{fl}
	if h.gatewayBin == "" {
		return out, errNoGateway
	}
	for _, g := range gateways {
		r, err := h.run(ctx, g)
		if out, err = collectOK(out, r, err); err != nil {
			return out, err
		}
	}
	return out, nil
}

func collectOK(out []result, r result, err error) ([]result, error) {
	if err != nil {
		return out, err
	}
	return append(out, r), nil
}
