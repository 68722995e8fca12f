package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is the JSON document one scenario writes.
type report struct {
	Scenario    string       `json:"scenario"`
	Started     time.Time    `json:"started"`
	Command     string       `json:"command"`
	Host        hostInfo     `json:"host"`
	Results     []result     `json:"results"`
	Comparisons []comparison `json:"vs_floor"`
}

type hostInfo struct {
	// Commit is the repository's HEAD when the report was written; Dirty
	// says the working tree (the gateway measured) had uncommitted changes.
	Commit   string `json:"commit"`
	Dirty    bool   `json:"dirty"`
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	Go       string `json:"go"`
}

// comparison is a gateway run set against the floor run of the same
// scenario at the same offered load.
type comparison struct {
	Name            string  `json:"name"`
	Trial           int     `json:"trial"`
	Offered         float64 `json:"offered_rate,omitempty"`
	Floor           string  `json:"floor"`
	ThroughputRatio float64 `json:"throughput_ratio"`  // gateway / floor
	P99DeltaMs      float64 `json:"p99_delta_ms"`      // gateway - floor, receipt
	DoneP99DeltaMs  float64 `json:"done_p99_delta_ms"` // gateway - floor, completion
	CPUPerMsgRatio  float64 `json:"cpu_per_msg_ratio"`
	RSSRatio        float64 `json:"rss_ratio"`
}

// compare pairs every gateway result with the floor result at the same
// offered rate (closed loop with closed loop).
func compare(results []result) []comparison {
	var out []comparison
	for _, g := range results {
		if g.Target != "gateway" {
			continue
		}
		for _, f := range results {
			if f.Target != "floor" || f.Offered != g.Offered || f.Trial != g.Trial {
				continue
			}
			out = append(out, comparison{
				Name: g.Name, Floor: f.Name, Trial: g.Trial, Offered: g.Offered,
				ThroughputRatio: ratio(g.Throughput, f.Throughput),
				P99DeltaMs:      g.E2E.P99 - f.E2E.P99,
				DoneP99DeltaMs:  g.Done.P99 - f.Done.P99,
				CPUPerMsgRatio:  ratio(g.CPUPerMsgUs, f.CPUPerMsgUs),
				RSSRatio:        ratio(g.PeakRSSMiB, f.PeakRSSMiB),
			})
			break
		}
	}
	return out
}

// delta renders a p99 difference; closed-loop runs measure backlog
// drain time, not latency, so their difference means nothing.
func delta(c comparison, d float64) string {
	if c.Offered == 0 {
		return "n/a (closed loop)"
	}
	return fmt.Sprintf("%+.2f", d)
}

// printMedians summarizes repeated trials: per gateway run, the median of
// each comparison over the trials.
func printMedians(w io.Writer, cs []comparison) {
	var names []string
	by := map[string][]comparison{}
	for _, c := range cs {
		if _, ok := by[c.Name]; !ok {
			names = append(names, c.Name)
		}
		by[c.Name] = append(by[c.Name], c)
	}
	if len(cs) == len(names) {
		return // one trial: nothing to summarize
	}
	fmt.Fprintln(w, "\n| gateway run | trials | median throughput ratio | median p99 delta ms | median done p99 delta ms | median CPU/msg ratio |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, n := range names {
		list := by[n]
		pick := func(f func(comparison) float64) float64 {
			v := make([]float64, len(list))
			for i, c := range list {
				v[i] = f(c)
			}
			return median(v)
		}
		c := comparison{Offered: list[0].Offered}
		fmt.Fprintf(w, "| %s | %d | %.2fx | %s | %s | %.2fx |\n", n, len(list),
			pick(func(c comparison) float64 { return c.ThroughputRatio }),
			delta(c, pick(func(c comparison) float64 { return c.P99DeltaMs })),
			delta(c, pick(func(c comparison) float64 { return c.DoneP99DeltaMs })),
			pick(func(c comparison) float64 { return c.CPUPerMsgRatio }))
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// writeReport prints the table and writes NAME-TIME.json and .svg to dir.
// host describes the machine and the tree measured (see currentHost).
func writeReport(dir, scenario string, started time.Time, host hostInfo, results []result) error {
	rep := report{
		Scenario: scenario, Started: started, Command: commandLine(),
		Host: host, Results: results, Comparisons: compare(results),
	}
	printTable(os.Stdout, rep)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s", scenario, started.Format("20060102-150405")))
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(base+".svg", latencyChart(scenario, results), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s.json and %s.svg\n", base, base)
	return nil
}

// printTable writes the results as a Markdown table, the form README uses.
func printTable(w io.Writer, rep report) {
	dirty := ""
	if rep.Host.Dirty {
		dirty = " + uncommitted changes"
	}
	fmt.Fprintf(w, "\n### %s (%d CPUs, %s; commit %.12s%s)\n\n", rep.Scenario, rep.Host.CPUs, rep.Host.CPUModel, rep.Host.Commit, dirty)
	fmt.Fprintln(w, "| run | offered msg/s | received | msg/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | done p50 | done p99 | done p99.9 | peak RSS MiB | CPU us/msg | bench+redis us/msg | idle before % | slow share | lost | dup | dlq |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rep.Results {
		offered := "closed"
		if r.Offered > 0 {
			offered = fmt.Sprintf("%.0f", r.Offered)
		}
		slow := "-"
		if r.Slow > 0 {
			slow = fmt.Sprintf("%.1f%%", 100*r.slowShare())
		}
		fmt.Fprintf(w, "| %s | %s | %d/%d | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f | %.2f | %.2f | %.2f | %.1f | %.1f | %.1f+%.1f | %.1f | %s | %d | %d | %d |\n",
			r.Name, offered, r.Received, r.Messages, r.Throughput, r.E2E.P50, r.E2E.P90, r.E2E.P99, r.E2E.P999, r.E2E.Max,
			r.Done.P50, r.Done.P99, r.Done.P999,
			r.PeakRSSMiB, r.CPUPerMsgUs, r.BenchCPUPerMsgUs, r.RedisCPUPerMsgUs, 100*r.IdleBefore, slow, r.Lost, r.Duplicates, r.DLQ)
	}
	if len(rep.Comparisons) > 0 {
		fmt.Fprintln(w, "\n| gateway run | trial | vs | throughput ratio | p99 delta ms | done p99 delta ms | CPU/msg ratio | RSS ratio |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, c := range rep.Comparisons {
			fmt.Fprintf(w, "| %s | %d | %s | %.2fx | %s | %s | %.2fx | %.2fx |\n", c.Name, c.Trial, c.Floor, c.ThroughputRatio,
				delta(c, c.P99DeltaMs), delta(c, c.DoneP99DeltaMs), c.CPUPerMsgRatio, c.RSSRatio)
		}
		printMedians(w, rep.Comparisons)
	}
	for _, r := range rep.Results {
		if r.Slow > 0 || r.Algorithm != "" {
			var shares []string
			for _, in := range r.PerInstance {
				shares = append(shares, fmt.Sprintf("%.1f", 100*in.Share))
			}
			fmt.Fprintf(w, "\n%s: per-instance share %% (slow first): %s\n", r.Name, strings.Join(shares, " "))
		}
		if r.IdleBefore < 0.8 {
			fmt.Fprintf(w, "\n%s: NOISY: CPUs only %.0f%% idle before it started (load %.1f): other work shared the %d CPUs\n",
				r.Name, 100*r.IdleBefore, r.LoadAvgStart, rep.Host.CPUs)
		}
		if r.Reloads > 0 {
			fmt.Fprintf(w, "\n%s: rules file rewritten %d times; gateway reported %.0f successful and %.0f failed reloads.\n",
				r.Name, r.Reloads, r.ReloadsSeen, r.ReloadErrors)
		}
		if r.ExitError != "" {
			fmt.Fprintf(w, "\n%s: consumer exit on SIGTERM: %s\n", r.Name, r.ExitError)
		}
		if !r.Completed {
			fmt.Fprintf(w, "\n%s: INCOMPLETE: %d of %d messages arrived before the deadline\n", r.Name, r.Received, r.Messages)
		}
		if r.Profile != "" {
			fmt.Fprintf(w, "\n%s: CPU profile in %s\n", r.Name, r.Profile)
		}
		if r.LogFile != "" {
			fmt.Fprintf(w, "\n%s: consumer output kept in %s\n", r.Name, r.LogFile)
		}
	}
	fmt.Fprintln(w)
}

// commandLine is how this run was started, as `go run ./bench ARGS`
// (the binary's own path is a temporary build directory).
func commandLine() string {
	return strings.Join(append([]string{"go", "run", "./bench"}, os.Args[1:]...), " ")
}

// currentHost describes this machine and the repository's state now: call
// it before building the gateway, so the commit is the one measured.
func currentHost() hostInfo {
	h := hostInfo{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), Go: runtime.Version()}
	h.Commit, h.Dirty = gitState()
	return h
}

// gitState returns HEAD and whether the tree has uncommitted changes
// ("unknown" outside git).
func gitState() (string, bool) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(head)), len(strings.TrimSpace(string(st))) > 0
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
