package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// profiler samples a consumer process with Linux perf during the measured
// window, so a report can say what limits the gateway (or the floor)
// without the gateway exposing pprof. Go binaries keep frame pointers and
// symbols, which perf reads directly.
type profiler struct {
	cmd  *exec.Cmd
	data string
	done chan error
}

// startProfile runs `perf record` on pid, writing dir/id.perf.data.
func startProfile(dir, id string, pid int) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("perf")
	if err != nil {
		return nil, fmt.Errorf("-perf: %w", err)
	}
	data := filepath.Join(dir, id+".perf.data")
	cmd := exec.Command(bin, "record", "-F", "999", "-g", "-p", fmt.Sprint(pid), "-o", data, "--quiet")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf record: %w", err)
	}
	p := &profiler{cmd: cmd, data: data, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop ends the recording and writes a flat per-symbol report beside the
// data file; it returns the report's path.
func (p *profiler) stop(ctx context.Context) (string, error) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	out := p.data[:len(p.data)-len(".perf.data")] + ".perf.txt"
	rep := exec.CommandContext(ctx, "perf", "report", "-i", p.data, "--stdio", "--no-children",
		"--sort", "dso,symbol", "-g", "none")
	b, err := rep.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("perf report: %w\n%s", err, b)
	}
	summary := byPackage(string(b))
	if err := os.WriteFile(out, append([]byte(summary+"\n"), b...), 0o644); err != nil {
		return "", err
	}
	return out, nil
}

// byPackage sums a flat `perf report` by Go package (kernel and other
// shared objects by name): where the consumer's CPU goes, in a few lines.
func byPackage(report string) string {
	sums := map[string]float64{}
	for _, line := range strings.Split(report, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[0], "%") || strings.HasPrefix(line, "#") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		dso, sym := f[1], f[3]
		key := dso
		if !strings.HasPrefix(dso, "[") && !strings.Contains(dso, ".so") {
			key = goPackage(sym)
		}
		sums[key] += pct
	}
	keys := make([]string, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return sums[keys[i]] > sums[keys[j]] })
	var b strings.Builder
	b.WriteString("# CPU by package (sum of self time)\n")
	for _, k := range keys {
		if sums[k] >= 0.5 {
			fmt.Fprintf(&b, "# %6.2f%%  %s\n", sums[k], k)
		}
	}
	return b.String()
}

// goPackage extracts the import path from a Go symbol:
// "github.com/valyala/fasthttp.(*HostClient).Do" -> "github.com/valyala/fasthttp".
func goPackage(sym string) string {
	slash := strings.LastIndexByte(sym, '/')
	dot := strings.IndexByte(sym[slash+1:], '.')
	if dot < 0 {
		return sym
	}
	return sym[:slash+1+dot]
}
