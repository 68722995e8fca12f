package main

import "time"

// runSpec is one measured run: one consumer (gateway or floor) draining
// Messages produced closed-loop (Rate 0) or open-loop at Rate per second.
type runSpec struct {
	Name     string // label in reports: "floor", "gateway", "gateway/peak_ewma"
	Target   string // "gateway" or "floor"
	Fleet    *fleet
	Messages int
	Rate     float64
	Routes   int
	// Realistic selects the realistic rule set and payloads (internal/workload)
	// instead of one attribute-equality route per route key.
	Realistic bool
	// Batch, when set, gives every realistic route this batch mapping
	// (batch.go).
	Batch     string
	Algorithm string
	// ReloadEvery > 0 rewrites the rules file at that period during the run.
	ReloadEvery time.Duration
	Timeout     time.Duration
	// OrderKeys > 0 makes the one route ordered (order_key) and the
	// producer cycle its messages over that many keys.
	OrderKeys int
	// Env holds extra GATEWAY_* settings for this run's gateway.
	Env []string
	// SampleRedis > 0 records XLEN and used_memory at that period.
	SampleRedis time.Duration
}

// result is what a run measured. Every number comes from this run.
type result struct {
	Scenario  string  `json:"scenario"`
	Trial     int     `json:"trial"`
	Name      string  `json:"name"`
	Target    string  `json:"target"`
	Algorithm string  `json:"algorithm,omitempty"`
	Routes    int     `json:"routes,omitempty"`
	Instances int     `json:"instances"`
	Latency   string  `json:"backend_latency"`
	Slow      int     `json:"slow_instances,omitempty"`
	Offered   float64 `json:"offered_rate,omitempty"` // msg/s, open loop; 0 = closed loop

	Messages   int     `json:"messages"`
	Received   int     `json:"received"` // distinct messages delivered
	Lost       int     `json:"lost"`     // never delivered before the deadline
	Duplicates int     `json:"duplicates"`
	DLQ        int64   `json:"dlq_entries"`
	Pending    int64   `json:"pending_after"` // unacked entries left in the group
	Completed  bool    `json:"completed"`     // every message delivered in time
	ElapsedSec float64 `json:"elapsed_sec"`   // first XADD to last first-receipt
	Throughput float64 `json:"throughput"`    // received / elapsed, msg/s

	E2E  latencySummary `json:"e2e_latency"`  // receipt minus intended send time
	Done latencySummary `json:"done_latency"` // E2E plus the instance's service time

	PeakRSSMiB  float64 `json:"peak_rss_mib"` // VmHWM of the consumer process
	CPUSec      float64 `json:"cpu_sec"`      // consumer utime+stime during the run
	CPUPerMsgUs float64 `json:"cpu_per_msg_us"`
	// CPU the other local tenants spent per message: the bench process
	// (producer and backends) and redis-server (0 when reused).
	BenchCPUPerMsgUs float64 `json:"bench_cpu_per_msg_us"`
	RedisCPUPerMsgUs float64 `json:"redis_cpu_per_msg_us,omitempty"`
	// LoadAvg is the machine's 1-minute load average at the end of the run.
	LoadAvg      float64 `json:"loadavg_1m"`
	LoadAvgStart float64 `json:"loadavg_1m_start"`         // before producing: mostly others' load
	IdleBefore   float64 `json:"cpu_idle_before"`          // idle fraction of all CPUs in the second before the run
	Warmup       string  `json:"warmup_problem,omitempty"` // gateway did not list every instance healthy in time
	Profile      string  `json:"perf_report,omitempty"`    // -perf: per-symbol CPU profile of the consumer
	LogFile      string  `json:"consumer_log,omitempty"`   // kept when the run went wrong
	ExitError    string  `json:"exit_error,omitempty"`     // consumer's exit on SIGTERM
	Reloads      int     `json:"rules_writes,omitempty"`
	ReloadsSeen  float64 `json:"reloads_ok_metric,omitempty"` // gateway_rules_reloads_total{result="success"}
	ReloadErrors float64 `json:"reloads_failed_metric,omitempty"`
	// StageMeanUs is the gateway's mean time per stage (gateway_stage_seconds):
	// read and ack per batch, the others per sampled message.
	StageMeanUs map[string]float64 `json:"stage_mean_us,omitempty"`

	PerInstance []instanceShare `json:"per_instance"`

	// With runSpec.SampleRedis: the stream's length and Redis's memory
	// over the run, and used_memory before it.
	RedisSamples        []redisSample `json:"redis_samples,omitempty"`
	UsedMemoryBeforeMiB float64       `json:"used_memory_before_mib,omitempty"`
}

type instanceShare struct {
	ID          string  `json:"id"`
	Slow        bool    `json:"slow,omitempty"`
	Received    int64   `json:"received"`
	Share       float64 `json:"share"`
	MaxInFlight int64   `json:"max_inflight"`
}

// slowShare is the fraction of messages the slow instances received.
func (r result) slowShare() float64 {
	var s float64
	for _, in := range r.PerInstance {
		if in.Slow {
			s += in.Share
		}
	}
	return s
}
