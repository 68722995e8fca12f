package main

import (
	"context"
	"fmt"
	"strings"
)

// Batch delivery (route field batch): the gateway posts up to max_messages
// messages of a route in one request. The backends answer requests under
// batchPathPrefix as batches (every entry SUCCESS, each entry recorded by
// the seq of its embedded payload), so one fleet serves the floor's single
// POSTs and the gateway's batches alike, and both runs drain the same data.

// batchPathPrefix is where batch routes post; backends treat requests
// under it as batches.
const batchPathPrefix = "/batch/"

// batchSpec is the routes' batch mapping for -batch-messages and
// -batch-wait.
func batchSpec(o options) string {
	return fmt.Sprintf("{max_messages: %d, max_wait: %s}", o.batchMsgs, o.batchWait)
}

// withBatch gives every route of a realistic rules file the batch mapping
// spec and a path under batchPathPrefix. An empty spec changes nothing.
func withBatch(rules []byte, spec string) []byte {
	if spec == "" {
		return rules
	}
	return []byte(strings.ReplaceAll(string(rules), "\n    path: /r", "\n    batch: "+spec+"\n    path: "+batchPathPrefix+"r"))
}

// batchScenario drains the same messages (realistic rules and payloads)
// through the floor, the gateway without batches and the gateway with a
// batch on every route.
func batchScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	f, err := h.uniformFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	n := orDefault(o.messages, 200_000)
	out, err := h.runAll(ctx, runSpec{Name: "floor", Target: "floor", Fleet: f, Messages: n, Timeout: o.timeout},
		runSpec{Name: "gateway/unbatched", Target: "gateway", Fleet: f, Messages: n, Routes: o.routes, Realistic: true, Timeout: o.timeout},
		runSpec{Name: fmt.Sprintf("gateway/batch-%d", o.batchMsgs), Target: "gateway", Fleet: f, Messages: n, Routes: o.routes, Realistic: true, Batch: batchSpec(o), Timeout: o.timeout})
	if err != nil {
		return out, err
	}
	fl, single, batched := out[0], out[1], out[2]
	fmt.Fprintf(h.log, "  batch: %.0f msg/s = %.2fx the floor (%.0f), %.2fx unbatched (%.0f); goal 3x the floor\n",
		batched.Throughput, ratio(batched.Throughput, fl.Throughput), fl.Throughput,
		ratio(batched.Throughput, single.Throughput), single.Throughput)
	return out, nil
}

// batchLatencyScenario runs the floor, the gateway without batches and
// the gateway with batches open-loop at -rate (default 5000 msg/s) for
// -duration, and reports the batched p99 against the unbatched one (goal:
// at most max_wait + 2 ms more).
func batchLatencyScenario(ctx context.Context, h *harness, o options) ([]result, error) {
	f, err := h.uniformFleet(ctx, o)
	if err != nil {
		return nil, err
	}
	rate := orDefault(o.rate, 5000)
	n := int(rate * o.duration.Seconds())
	out, err := h.runAll(ctx, runSpec{Name: "floor@rate", Target: "floor", Fleet: f, Rate: rate, Messages: n, Timeout: o.timeout},
		runSpec{Name: "gateway/unbatched@rate", Target: "gateway", Fleet: f, Rate: rate, Messages: n, Routes: o.routes, Realistic: true, Timeout: o.timeout},
		runSpec{Name: fmt.Sprintf("gateway/batch-%d@rate", o.batchMsgs), Target: "gateway", Fleet: f, Rate: rate, Messages: n, Routes: o.routes, Realistic: true, Batch: batchSpec(o), Timeout: o.timeout})
	if err != nil {
		return out, err
	}
	single, batched := out[1], out[2]
	fmt.Fprintf(h.log, "  batch-latency: recv p99 batched %.2f ms vs unbatched %.2f ms: %+.2f ms (goal <= max_wait %s + 2 ms)\n",
		batched.E2E.P99, single.E2E.P99, batched.E2E.P99-single.E2E.P99, o.batchWait)
	return out, nil
}
