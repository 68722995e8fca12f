package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"
)

// harness runs measured runs against one environment.
type harness struct {
	env         *env
	rdb         *redis.Client
	gatewayBin  string // empty until built
	repoRoot    string
	dir         string // temp dir for configs and rules
	batch       int
	inflight    int
	log         io.Writer // progress lines
	scenario    string
	seq         int
	fleets      []*fleet
	tick        time.Duration // open-loop producer wake-up period
	outDir      string
	gatewayEnv  []string // extra GATEWAY_* settings for the gateway process
	perf        bool     // profile consumers with perf during each run
	preload     bool     // closed-loop runs drain a backlog produced before the consumer starts
	dumpLatency bool     // write per-message latencies (-dump-latency)
	floorBin    string   // empty: this executable
	waitIdle    float64  // before each run, wait (≤1 min) for this idle fraction
	gwConfig    string   // gateway config mode (configWindow, configDefault, configTuned)
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
