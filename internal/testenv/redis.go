package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server child process on a loopback port. Not safe for
// concurrent Stop/Start calls.
type Redis struct {
	Addr string
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string
	proc *process
}

// StartRedis starts a redis-server without persistence on a free port. It
// is stopped at the end of the test. Extra args are appended to the command
// line (for example "--requirepass", "secret").
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return startRedisOn(t, FreePort(t), extra...)
}

func startRedisOn(t testing.TB, port int, extra ...string) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: lookBinary(t, "redis-server"), dir: t.TempDir(), port: port}
	r.Addr = hostPort(r.port)
	r.args = append([]string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
	}, extra...)
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server on the same port and waits until it answers.
func (r *Redis) Start() {
	r.t.Helper()
	r.proc = startProcess(r.t, "redis-server", r.bin, nil, r.args...)
	if err := waitFor(10*time.Second, func() error { return dialOK(r.Addr) }); err != nil {
		failf(r.t, r.proc, "redis-server on %s did not start: %v", r.Addr, err)
	}
}

// Stop terminates the server (its data is lost).
func (r *Redis) Stop() {
	if r.proc != nil {
		r.proc.stop(5 * time.Second)
	}
}

// Kill sends SIGKILL, as a crash would.
func (r *Redis) Kill() {
	if r.proc != nil {
		r.proc.kill()
	}
}

// clusterBusOffset is how far above its port a cluster node listens for
// its peers (Redis's default cluster bus port).
const clusterBusOffset = 10000

// clusterPort returns a free port whose cluster bus port is free too: a
// node whose bus port is taken exits at start ("Failed listening on port
// ... (cluster)"), which a plain free port does not rule out.
func clusterPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port+clusterBusOffset > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", hostPort(port+clusterBusOffset))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free port with a free cluster bus port after 100 tries")
	return 0
}

// RedisCluster is a Redis Cluster of masters only, on loopback.
type RedisCluster struct {
	Addrs []string
	nodes []*Redis
}

// StartRedisCluster starts n cluster-enabled redis-servers and joins them
// into a cluster with redis-cli --cluster create, waiting until every slot
// is served.
func StartRedisCluster(t testing.TB, n int) *RedisCluster {
	t.Helper()
	c := &RedisCluster{}
	for i := 0; i < n; i++ {
		r := startRedisOn(t, clusterPort(t), "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
		r.args = append(r.args, "--cluster-config-file", r.dir+"/nodes.conf")
		c.nodes = append(c.nodes, r)
		c.Addrs = append(c.Addrs, r.Addr)
	}
	cli := lookBinary(t, "redis-cli")
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	err := waitFor(20*time.Second, func() error {
		for _, a := range c.Addrs {
			host, port, _ := strings.Cut(a, ":")
			out, err := exec.Command(cli, "-h", host, "-p", port, "cluster", "info").CombinedOutput()
			if err != nil {
				return err
			}
			if !strings.Contains(string(out), "cluster_state:ok") {
				return fmt.Errorf("%s: cluster not ok yet", a)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redis cluster did not converge: %v", err)
	}
	return c
}
