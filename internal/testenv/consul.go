package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Consul is a `consul agent -dev` child process with every port given
// explicitly, so several agents (and tests) can run side by side.
type Consul struct {
	// Addr is the HTTP API address, host:port.
	Addr string
	t    testing.TB
	bin  string
	args []string
	proc *process
}

// StartConsul starts a Consul dev agent on free loopback ports and waits
// until it has a leader. It is stopped at the end of the test. Extra args
// are appended to the command line (for example "-config-file", path).
func StartConsul(t testing.TB, extra ...string) *Consul {
	t.Helper()
	c := &Consul{t: t, bin: lookBinary(t, "consul")}
	// A port found free may be taken by another process before the agent
	// binds it (tests on this machine run in parallel): then try other ports.
	for attempt := 1; ; attempt++ {
		httpPort := FreePort(t)
		c.Addr = hostPort(httpPort)
		c.args = []string{
			"agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
			"-node", fmt.Sprintf("test-%d", httpPort),
			"-data-dir", t.TempDir(),
			"-http-port", strconv.Itoa(httpPort),
			"-server-port", strconv.Itoa(FreePort(t)),
			"-serf-lan-port", strconv.Itoa(FreePort(t)),
			"-serf-wan-port", strconv.Itoa(FreePort(t)),
			"-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
			"-log-level", "warn",
		}
		c.args = append(c.args, extra...)
		err := c.start()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(c.proc.out.String(), "address already in use") {
			failf(c.t, c.proc, "consul agent on %s did not start: %v", c.Addr, err)
		}
		c.proc.stop(5 * time.Second)
	}
	t.Cleanup(c.Stop)
	return c
}

// Start (re)starts the agent on the same ports and waits for a leader.
// A dev agent keeps nothing across restarts: services must re-register.
func (c *Consul) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		failf(c.t, c.proc, "consul agent on %s did not start: %v", c.Addr, err)
	}
}

// start starts the agent and waits until it has a leader, or exited.
func (c *Consul) start() error {
	c.t.Helper()
	c.proc = startProcess(c.t, "consul", c.bin, []string{"CHECKPOINT_DISABLE=1"}, c.args...)
	client := &http.Client{Timeout: time.Second}
	return waitFor(30*time.Second, func() error {
		select {
		case <-c.proc.done:
			return errExited
		default:
		}
		resp, err := client.Get("http://" + c.Addr + "/v1/status/leader")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		buf := make([]byte, 64)
		n, _ := resp.Body.Read(buf)
		if resp.StatusCode != 200 || n <= 2 { // `""` means no leader yet
			return fmt.Errorf("no leader yet (status %d)", resp.StatusCode)
		}
		return nil
	})
}

// Stop terminates the agent gracefully.
func (c *Consul) Stop() {
	if c.proc != nil {
		c.proc.stop(10 * time.Second)
	}
}

// Kill sends SIGKILL to the agent, as a crash would.
func (c *Consul) Kill() {
	if c.proc != nil {
		c.proc.kill()
	}
}

// ACLConfig writes a Consul agent config file enabling ACLs with
// default_policy deny and managementToken as the initial management token
// (also used as the agent's own token), and returns the args that load it,
// for StartConsul.
func ACLConfig(t testing.TB, managementToken string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "acl.hcl")
	hcl := fmt.Sprintf(`acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = false
  tokens {
    initial_management = %q
    agent = %q
  }
}
`, managementToken, managementToken)
	if err := os.WriteFile(p, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"-config-file", p}
}

// ConsulTLSConfig writes a Consul agent config file serving the HTTP API
// over TLS on httpsPort with c's server certificate (the plain HTTP port
// stays open for the harness). With clientCerts, HTTPS clients must present
// a certificate signed by c's CA. It returns the args that load it, for
// StartConsul.
func ConsulTLSConfig(t testing.TB, c *Certs, httpsPort int, clientCerts bool) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tls.hcl")
	hcl := fmt.Sprintf(`ports { https = %d }
tls {
  defaults {
    ca_file = %q
    cert_file = %q
    key_file = %q
    verify_incoming = false
    verify_outgoing = false
  }
  https { verify_incoming = %t }
}
`, httpsPort, c.CAFile, c.ServerCert, c.ServerKey, clientCerts)
	if err := os.WriteFile(p, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"-config-file", p}
}
