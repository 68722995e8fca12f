package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// env is the servers a bench run needs: Redis and a Consul agent, either
// reused (addresses given by flags) or started here on free loopback ports.
type env struct {
	RedisAddr  string
	ConsulAddr string
	dir        string
	procs      []*proc
	redisPid   int // 0 when reused
}

// startEnv starts what is not given. repoRoot locates .tools/bin/consul.
func startEnv(ctx context.Context, redisAddr, consulAddr, repoRoot, dir string) (*env, error) {
	e := &env{RedisAddr: redisAddr, ConsulAddr: consulAddr, dir: dir}
	if e.RedisAddr == "" {
		if err := e.startRedis(ctx); err != nil {
			e.Close()
			return nil, err
		}
	}
	if e.ConsulAddr == "" {
		if err := e.startConsul(ctx, repoRoot); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

func (e *env) startRedis(ctx context.Context) error {
	bin, err := lookBin("redis-server", "")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(e.dir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	e.RedisAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p, err := startProc("redis-server", bin, nil, nil,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err != nil {
		return err
	}
	e.procs = append(e.procs, p)
	e.redisPid = p.Pid()
	c := redis.NewClient(&redis.Options{Addr: e.RedisAddr})
	defer c.Close()
	return waitUntil(ctx, 10*time.Second, p, func() error { return c.Ping(ctx).Err() })
}

func (e *env) startConsul(ctx context.Context, repoRoot string) error {
	bin, err := lookBin("consul", filepath.Join(repoRoot, ".tools", "bin", "consul"))
	if err != nil {
		return err
	}
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	e.ConsulAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	p, err := startProc("consul", bin, []string{"CHECKPOINT_DISABLE=1"}, nil,
		"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-node", fmt.Sprintf("bench-%d", ports[0]),
		"-data-dir", filepath.Join(e.dir, "consul"),
		"-http-port", strconv.Itoa(ports[0]),
		"-server-port", strconv.Itoa(ports[1]),
		"-serf-lan-port", strconv.Itoa(ports[2]),
		"-serf-wan-port", strconv.Itoa(ports[3]),
		"-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-log-level", "warn")
	if err != nil {
		return err
	}
	e.procs = append(e.procs, p)
	client := &http.Client{Timeout: time.Second}
	return waitUntil(ctx, 30*time.Second, p, func() error {
		resp, err := client.Get("http://" + e.ConsulAddr + "/v1/status/leader")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		buf := make([]byte, 64)
		n, _ := resp.Body.Read(buf)
		if resp.StatusCode != http.StatusOK || n <= 2 { // `""`: no leader yet
			return fmt.Errorf("consul: no leader yet (status %d)", resp.StatusCode)
		}
		return nil
	})
}

// Close stops the servers started here, last first.
func (e *env) Close() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		_ = e.procs[i].Stop(10 * time.Second)
	}
}

// lookBin prefers the explicit path, then PATH.
func lookBin(name, preferred string) (string, error) {
	if preferred != "" {
		if st, err := os.Stat(preferred); err == nil && !st.IsDir() {
			return preferred, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (PATH or %s); run scripts/setup.sh or pass its address: %w", name, preferred, err)
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errExited = errors.New("process exited")

// waitUntil polls cond with growing pauses until it holds, the timeout
// passes, ctx ends or p (when not nil) exits.
func waitUntil(ctx context.Context, timeout time.Duration, p *proc, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := 10 * time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			return waitErr(p, fmt.Errorf("%w (last: %v)", ctx.Err(), last))
		case <-t.C:
		}
		if last = cond(); last == nil {
			return nil
		}
		if p != nil && p.Exited() {
			return waitErr(p, errExited)
		}
		pause = min(2*pause, 250*time.Millisecond)
		t.Reset(pause)
	}
}

func waitErr(p *proc, err error) error {
	if p == nil {
		return err
	}
	return fmt.Errorf("%s not ready: %w\n--- %s output (tail) ---\n%s", p.name, err, p.name, p.Output())
}
