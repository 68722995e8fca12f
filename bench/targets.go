package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A target is the consumer under test: the gateway or the floor, each a
// separate process whose RSS and CPU the harness samples.

// buildGateway compiles ./cmd/gateway into dir and returns the binary.
func buildGateway(ctx context.Context, repoRoot, dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(repoRoot, "cmd", "gateway")); err != nil {
		return "", fmt.Errorf("cmd/gateway not present yet: %w", err)
	}
	bin := filepath.Join(dir, "gateway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gateway")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gateway: %w\n%s", err, out)
	}
	return bin, nil
}

// buildSelf compiles this program with symbols into dir: `go run` strips
// them, and perf needs them to name the floor's functions.
func buildSelf(ctx context.Context, repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "bench")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./bench: %w\n%s", err, out)
	}
	return bin, nil
}

// startGateway writes cfg and the rules file's first generation into dir
// and starts `gateway run --config`, returning once /readyz answers 200.
// env holds extra GATEWAY_<SECTION>_<KEY>=value overrides.
func startGateway(ctx context.Context, bin, dir string, env []string, cfg gatewayConfig) (*proc, error) {
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, configYAML(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	p, err := startProc("gateway", bin, env, nil, "run", "--config", path)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: time.Second}
	err = waitUntil(ctx, 30*time.Second, p, func() error {
		resp, err := client.Get("http://" + cfg.AdminListen + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// startFloor runs bin (this program; empty: our own executable) as
// `bench floor-worker` and waits until it has created its group.
func startFloor(ctx context.Context, bin string, c floorConfig) (*proc, error) {
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("floor: own executable: %w", err)
		}
		bin = self
	}
	p, err := startProc("floor", bin, nil, nil, "floor-worker",
		"-redis", c.redisAddr, "-stream", c.stream, "-group", c.group,
		"-consumer", c.consumer, "-instances", strings.Join(c.instances, ","),
		"-batch", strconv.Itoa(c.batch), "-inflight", strconv.Itoa(c.inflight))
	if err != nil {
		return nil, err
	}
	err = waitUntil(ctx, 10*time.Second, p, func() error {
		if !strings.Contains(p.Output(), "floor ready") {
			return fmt.Errorf("floor: not ready")
		}
		return nil
	})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// scrapeMetrics fetches admin's /metrics and sums the samples of each named
// metric (over all label sets); want names the metrics of interest.
func scrapeMetrics(admin string, want ...string) (map[string]float64, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		for _, w := range want {
			// w may carry a label filter: `gateway_rules_reloads_total{result="success"}`.
			if name == w || strings.HasPrefix(name, w+"{") {
				f := strings.Fields(rest)
				if len(f) > 0 {
					if v, err := strconv.ParseFloat(f[0], 64); err == nil {
						out[w] += v
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	return out, nil
}

// waitInstances waits until the gateway's GET /instances lists service
// with want healthy instances, so a run measures steady state rather than
// discovery warm-up. The JSON is walked generically: any object with
// "service" == service and an "instances" array of objects with "state".
func waitInstances(ctx context.Context, admin, service string, want int) error {
	client := &http.Client{Timeout: time.Second}
	return waitUntil(ctx, 10*time.Second, nil, func() error {
		resp, err := client.Get("http://" + admin + "/instances")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var doc any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			return fmt.Errorf("instances: %w", err)
		}
		if got := healthyIn(doc, service); got < want {
			return fmt.Errorf("gateway sees %d healthy %s instances, want %d", got, service, want)
		}
		return nil
	})
}

func healthyIn(doc any, service string) int {
	switch v := doc.(type) {
	case []any:
		n := 0
		for _, e := range v {
			n += healthyIn(e, service)
		}
		return n
	case map[string]any:
		if v["service"] == service {
			n := 0
			list, _ := v["instances"].([]any)
			for _, in := range list {
				if m, ok := in.(map[string]any); ok && m["state"] == "healthy" {
					n++
				}
			}
			return n
		}
		n := 0
		for _, e := range v {
			n += healthyIn(e, service)
		}
		return n
	}
	return 0
}
