// Command bench is the gateway's measuring instrument: it starts (or
// reuses) Redis and Consul, in-process backend instances registered in
// Consul, a producer, and the consumer under test as a separate process,
// either the gateway (./cmd/gateway) or the floor (the thinnest pipeline
// doing the same job), and reports throughput, end-to-end latency from the
// intended send time, per-instance share, peak RSS and CPU per message.
//
//	go run ./bench -scenario throughput
//	go run ./bench -scenario all
//
// See bench/README.md for the scenarios and how to read the output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// options are the command-line flags.
type options struct {
	scenario    string
	redisAddr   string
	consulAddr  string
	gatewayBin  string
	outDir      string
	messages    int
	rate        float64
	duration    time.Duration
	instances   int
	routes      int
	latency     string
	slowLat     string
	slowFactor  float64
	algorithms  string
	ruleCounts  string
	reloadEvery time.Duration
	batch       int
	inflight    int
	timeout     time.Duration
	tick        time.Duration
	gatewayEnv  envList
	perf        bool
	preload     bool
	dumpLatency bool
	waitIdle    float64
	repeat      int
	otlpSink    bool
	ruleset     string
	gwConfig    string
	batchMsgs   int
	batchWait   time.Duration
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

// goRuntimeEnv are the Go runtime's variables -gateway-env also passes,
// for A/B runs of runtime settings.
var goRuntimeEnv = map[string]bool{"GOGC": true, "GOMEMLIMIT": true, "GOMAXPROCS": true, "GODEBUG": true}

func (e *envList) Set(v string) error {
	k, _, ok := strings.Cut(v, "=")
	if !ok || !(strings.HasPrefix(k, "GATEWAY_") || goRuntimeEnv[k]) {
		return fmt.Errorf("want GATEWAY_<SECTION>_<KEY>=VALUE or a Go runtime variable (GOGC, GOMEMLIMIT, GOMAXPROCS, GODEBUG), got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor-worker" {
		if err := floorMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "floor-worker:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.scenario, "scenario", "throughput", "throughput | latency | slow | rules | reload | ordered | retention | batch | batch-latency | floor | all")
	flag.StringVar(&o.redisAddr, "redis", "", "reuse this Redis (host:port) instead of starting redis-server")
	flag.StringVar(&o.consulAddr, "consul", "", "reuse this Consul agent (host:port) instead of starting one")
	flag.StringVar(&o.gatewayBin, "gateway-bin", "", "prebuilt gateway binary (default: go build ./cmd/gateway)")
	flag.StringVar(&o.outDir, "out", "", "directory for JSON and SVG results (default <repo>/bench/out)")
	flag.IntVar(&o.messages, "messages", 0, "messages per closed-loop run (default per scenario)")
	flag.Float64Var(&o.rate, "rate", 0, "open-loop rate, msg/s (default per scenario)")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "length of open-loop runs")
	flag.IntVar(&o.instances, "instances", 10, "backend instances")
	flag.IntVar(&o.routes, "routes", 100, "routes in the rules file (throughput, latency, reload)")
	flag.StringVar(&o.latency, "latency", "0", `backend service time: "0", "2ms" or "lognormal:MEDIAN:P99"`)
	flag.StringVar(&o.slowLat, "slow-latency", "2ms", "service time of the fast instances in the slow scenario")
	flag.Float64Var(&o.slowFactor, "slow-factor", 10, "the slow instance's service time multiplier")
	flag.StringVar(&o.algorithms, "algorithms", "peak_ewma,least_pending,round_robin,random", "balancer.algorithm values for the slow scenario")
	flag.StringVar(&o.ruleCounts, "rule-counts", "10,1000,10000", "route counts for the rules scenario")
	flag.DurationVar(&o.reloadEvery, "reload-every", 200*time.Millisecond, "rules rewrite period in the reload scenario")
	flag.IntVar(&o.batch, "batch", 256, "consumer.batch (XREADGROUP COUNT) for gateway and floor")
	flag.IntVar(&o.inflight, "inflight", 128, "in-flight window: consumer.max_inflight for the gateway, concurrent POSTs for the floor")
	flag.StringVar(&o.ruleset, "ruleset", "realistic", "rules of throughput and latency: realistic (body fields, ranges, ||, in; match is 97th of 100) | simple (one attribute equality per route)")
	flag.StringVar(&o.gwConfig, "gateway-config", configWindow, "what the gateway's config sets: window (max_inflight and batch = -inflight, -batch) | default (nothing: the gateway's defaults) | tuned (window plus service_concurrency = -inflight)")
	flag.IntVar(&o.batchMsgs, "batch-messages", 100, "batch and batch-latency scenarios: the routes' batch max_messages")
	flag.DurationVar(&o.batchWait, "batch-wait", 5*time.Millisecond, "batch and batch-latency scenarios: the routes' batch max_wait")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "deadline of each run")
	flag.DurationVar(&o.tick, "tick", 500*time.Microsecond, "open-loop producer wakes at most once per tick (0: per message)")
	flag.Var(&o.gatewayEnv, "gateway-env", "extra gateway setting as GATEWAY_<SECTION>_<KEY>=VALUE, or GOGC/GOMEMLIMIT/GOMAXPROCS/GODEBUG (repeatable)")
	flag.BoolVar(&o.preload, "preload", true, "closed-loop runs: produce all messages but the last 256 before the consumer starts and time the drain of that backlog (false: the producer runs during the drain and shares the CPUs)")
	flag.BoolVar(&o.perf, "perf", false, "profile the consumer with Linux perf during each run (reports in -out)")
	flag.BoolVar(&o.dumpLatency, "dump-latency", false, "write each run's latency per message, in send order, to -out/ID.RUN.lat (µs per line)")
	flag.Float64Var(&o.waitIdle, "wait-idle", 0, "before each run wait (at most 1 min) until the CPUs were this idle over 1 s, e.g. 0.9")
	flag.BoolVar(&o.otlpSink, "otlp-sink", false, "turn the gateway's tracing on, exporting to an OTLP/HTTP sink in this process that discards the spans")
	flag.IntVar(&o.repeat, "repeat", 1, "run each scenario this many times, floor and gateway interleaved; reports give medians")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.outDir == "" {
		o.outDir = filepath.Join(root, "bench", "out")
	}
	tmp, err := os.MkdirTemp("", "gateway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	e, err := startEnv(ctx, o.redisAddr, o.consulAddr, root, tmp)
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Printf("redis %s, consul %s\n", e.RedisAddr, e.ConsulAddr)
	rdb := redis.NewClient(&redis.Options{Addr: e.RedisAddr, PoolSize: 8})
	defer rdb.Close()

	h := &harness{env: e, rdb: rdb, repoRoot: root, dir: tmp, batch: o.batch, inflight: o.inflight, log: os.Stdout, tick: o.tick}
	defer h.closeFleets()
	host := currentHost()
	h.gatewayBin = o.gatewayBin
	h.outDir = o.outDir
	h.gatewayEnv = o.gatewayEnv
	if o.otlpSink {
		sink, err := startOTLPSink()
		if err != nil {
			return err
		}
		defer sink.Close()
		h.gatewayEnv = append(h.gatewayEnv, "GATEWAY_TRACING_OTLP_ENDPOINT="+sink.URL)
		fmt.Printf("tracing on: exporting to %s\n", sink.URL)
	}
	h.perf = o.perf
	h.preload = o.preload
	h.dumpLatency = o.dumpLatency
	h.waitIdle = o.waitIdle
	switch o.gwConfig {
	case configWindow, configDefault, configTuned:
		h.gwConfig = o.gwConfig
	default:
		return fmt.Errorf("-gateway-config: want window, default or tuned, got %q", o.gwConfig)
	}
	if o.ruleset != "realistic" && o.ruleset != "simple" {
		return fmt.Errorf("-ruleset: want realistic or simple, got %q", o.ruleset)
	}
	if o.perf {
		if h.floorBin, err = buildSelf(ctx, root, tmp); err != nil {
			return err
		}
	}
	if h.gatewayBin == "" && o.scenario != "floor" {
		bin, err := buildGateway(ctx, root, tmp)
		if err != nil {
			fmt.Printf("gateway unavailable, running the floor only: %v\n", err)
		}
		h.gatewayBin = bin
	}

	names := []string{o.scenario}
	if o.scenario == "all" {
		names = []string{"throughput", "latency", "slow", "rules", "reload"}
	}
	for _, name := range names {
		sc, ok := scenarios[name]
		if !ok {
			return fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(scenarioNames(), ", "))
		}
		h.scenario = name
		fmt.Printf("== scenario %s\n", name)
		started := time.Now()
		var results []result
		for trial := 1; trial <= max(o.repeat, 1); trial++ {
			if o.repeat > 1 {
				fmt.Printf("-- trial %d of %d\n", trial, o.repeat)
			}
			rs, rerr := sc(ctx, h, o)
			for i := range rs {
				rs[i].Trial = trial
			}
			results, err = append(results, rs...), rerr
			if err != nil {
				break
			}
		}
		if len(results) > 0 {
			if werr := writeReport(o.outDir, name, started, host, results); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
	}
	return nil
}

// repoRoot finds the gateway module's root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/msgroute/gateway\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run bench from inside the gateway repository (go.mod not found)")
		}
		dir = parent
	}
}
