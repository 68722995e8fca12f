package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/internal/testenv"
	"github.com/msgroute/gateway/rules"
)

// The tests in this file run the gateway against secured servers: Redis
// with requirepass, ACL users and TLS (server CA verification and client
// certificates), Consul with ACLs. Secrets reach the gateway through the
// environment (GATEWAY_REDIS_PASSWORD, ...), as an operator would pass them,
// and must never appear in its logs.

// newHarnessOn is newHarness around servers the test started, with the
// test's own Redis client options and Consul token.
func newHarnessOn(t *testing.T, r *testenv.Redis, opts *redis.Options, c *testenv.Consul, token string) *harness {
	t.Helper()
	h := &harness{t: t, redis: r, consul: c, dir: t.TempDir(), claimIdle: "2s", redisAddrs: []string{r.Addr}}
	opts.Addr = r.Addr
	h.rdb = redis.NewClient(opts)
	t.Cleanup(func() { h.rdb.Close() })
	var err error
	h.capi, err = consul.NewClient(&consul.Config{Address: c.Addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		// The agent installs the initial management token a moment after
		// it has a leader; until then it answers 403 "ACL not found".
		h.waitFor("consul ACL token usable", 20*time.Second, func() error {
			_, _, err := h.capi.ACL().TokenReadSelf(nil)
			return err
		})
	}
	return h
}

// startLogged starts the gateway in-process at debug level with its log
// captured, waits only until the admin server answers /healthz (ready or
// not), and returns the log.
func (h *harness) startLogged(streams []string, extra string) *lockedLog {
	h.t.Helper()
	cfgPath, admin := h.writeConfig("gateway.yaml", "test-gw", streams, extra)
	h.admin = admin
	cfg, err := config.Load(cfgPath)
	if err != nil {
		b, _ := os.ReadFile(cfgPath)
		h.t.Fatalf("config: %v\n%s", err, b)
	}
	set, err := rules.Load(cfg.Rules.Path)
	if err != nil {
		h.t.Fatalf("rules: %v", err)
	}
	logs := &lockedLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- serve(ctx, cfg, set, log) }()
	h.t.Cleanup(h.stop)
	h.waitFor("admin answers", 10*time.Second, func() error {
		resp, err := http.Get("http://" + h.admin + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return logs
}

// stopErr stops a gateway started with startLogged and returns what serve
// returned: a gateway that never reached Redis may fail its shutdown with
// the reason.
func (h *harness) stopErr() error {
	h.t.Helper()
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(20 * time.Second):
		h.t.Fatal("gateway did not stop within 20s")
		return nil
	}
}

// readyz returns /readyz's status and body.
func (h *harness) readyz() (int, string) {
	resp, err := http.Get("http://" + h.admin + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// expectReady waits for /readyz 200.
func (h *harness) expectReady() {
	h.t.Helper()
	h.waitFor("gateway ready", 15*time.Second, func() error {
		if code, body := h.readyz(); code != 200 {
			return fmt.Errorf("readyz %d: %s", code, body)
		}
		return nil
	})
}

// expectNotReady checks /readyz stays 503 for a while and that its body
// explains why (contains every one of why).
func (h *harness) expectNotReady(why ...string) string {
	h.t.Helper()
	var body string
	h.waitFor("readyz explains", 10*time.Second, func() error {
		var code int
		code, body = h.readyz()
		if code != 503 {
			return fmt.Errorf("readyz %d, want 503: %s", code, body)
		}
		for _, w := range why {
			if !strings.Contains(body, w) {
				return fmt.Errorf("readyz body lacks %q: %s", w, body)
			}
		}
		return nil
	})
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if code, b := h.readyz(); code != 503 {
			h.t.Fatalf("readyz turned %d: %s", code, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return body
}

// routesOne publishes one message and waits until b received it and it
// was acked.
func (h *harness) routesOne(b *backend) {
	h.t.Helper()
	before := b.count()
	id := h.publish("orders", "type", "order.created", "payload", `{"id":"s","total":1}`)
	h.waitFor("message "+id+" delivered and acked", 10*time.Second, func() error {
		if b.count() <= before {
			return fmt.Errorf("not delivered")
		}
		if p := h.pending("orders"); p != 0 {
			return fmt.Errorf("pending %d", p)
		}
		return nil
	})
}

func assertNoSecret(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains secret %q:\n%s", where, s, text)
		}
	}
}

// authCase is one way of starting the gateway against a secured server.
type authCase struct {
	name  string
	env   map[string]string
	ready bool
	why   []string // substrings /readyz must show when not ready
}

// runAuthCases starts a gateway per case, one after the other, and checks
// it routes (ready) or stays unready with a clear reason, and that neither
// its log nor /readyz show any secret.
func runAuthCases(t *testing.T, h *harness, b *backend, cases []authCase, secrets ...string) {
	t.Helper()
	for _, tc := range cases {
		t.Logf("case %s", tc.name)
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		logs := h.startLogged([]string{"orders"}, "")
		var body string
		if tc.ready {
			h.expectReady()
			h.routesOne(b)
			_, body = h.readyz()
		} else {
			body = h.expectNotReady(tc.why...)
			t.Logf("%s: /readyz says %s", tc.name, strings.Join(strings.Fields(body), " "))
		}
		err := h.stopErr()
		if err != nil {
			t.Logf("%s: serve returned %v", tc.name, err)
			assertNoSecret(t, tc.name+": serve's error", err.Error(), secrets...)
			if tc.ready {
				t.Errorf("%s: serve returned %v after a clean run", tc.name, err)
			}
		}
		assertNoSecret(t, tc.name+": gateway log", logs.String(), secrets...)
		assertNoSecret(t, tc.name+": /readyz", body, secrets...)
		for k := range tc.env {
			os.Unsetenv(k) // restored by t.Setenv's cleanup at the end
		}
	}
}

func TestSecureRedisRequirePass(t *testing.T) {
	const secret = "rp-9fQ2-secret-requirepass"
	r := testenv.StartRedis(t, "--requirepass", secret)
	h := newHarnessOn(t, r, &redis.Options{Password: secret}, testenv.StartConsul(t), "")
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	runAuthCases(t, h, b, []authCase{
		{name: "right password", env: map[string]string{"GATEWAY_REDIS_PASSWORD": secret}, ready: true},
		{name: "wrong password", env: map[string]string{"GATEWAY_REDIS_PASSWORD": "not-it-Xy7"},
			why: []string{`"redis"`, "WRONGPASS"}},
		{name: "no password", why: []string{`"redis"`, "NOAUTH"}},
	}, secret, "not-it-Xy7")
}

func TestSecureRedisACLUser(t *testing.T) {
	const secret = "acl-7Hk2-secret-userpass"
	r := testenv.StartRedis(t, "--user", "gateway", "on", ">"+secret, "~*", "&*", "+@all", "--user", "default", "off")
	h := newHarnessOn(t, r, &redis.Options{Username: "gateway", Password: secret}, testenv.StartConsul(t), "")
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	runAuthCases(t, h, b, []authCase{
		{name: "right user and password", ready: true,
			env: map[string]string{"GATEWAY_REDIS_USERNAME": "gateway", "GATEWAY_REDIS_PASSWORD": secret}},
		{name: "wrong password", why: []string{`"redis"`, "WRONGPASS"},
			env: map[string]string{"GATEWAY_REDIS_USERNAME": "gateway", "GATEWAY_REDIS_PASSWORD": "nope-Qw3"}},
		{name: "right password, other user", why: []string{`"redis"`, "WRONGPASS"},
			env: map[string]string{"GATEWAY_REDIS_USERNAME": "intruder", "GATEWAY_REDIS_PASSWORD": secret}},
		{name: "disabled default user", why: []string{`"redis"`},
			env: map[string]string{"GATEWAY_REDIS_PASSWORD": secret}},
	}, secret, "nope-Qw3")
}

// tlsOptions is the test's own client config for a TLS Redis.
func tlsOptions(t *testing.T, c *testenv.Certs) *redis.Options {
	t.Helper()
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &redis.Options{TLSConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
}

func TestSecureRedisTLSClientCert(t *testing.T) {
	certs := testenv.GenerateCerts(t)
	r := testenv.StartRedisTLS(t, certs, true)
	h := newHarnessOn(t, r, tlsOptions(t, certs), testenv.StartConsul(t), "")
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	full := map[string]string{
		"GATEWAY_REDIS_TLS": "true", "GATEWAY_REDIS_TLS_CA_FILE": certs.CAFile,
		"GATEWAY_REDIS_TLS_CERT_FILE": certs.ClientCert, "GATEWAY_REDIS_TLS_KEY_FILE": certs.ClientKey,
	}
	runAuthCases(t, h, b, []authCase{
		{name: "CA and client cert", env: full, ready: true},
		{name: "CA without client cert", why: []string{`"redis"`},
			env: map[string]string{"GATEWAY_REDIS_TLS": "true", "GATEWAY_REDIS_TLS_CA_FILE": certs.CAFile}},
		{name: "client cert, server signed by another CA", why: []string{`"redis"`, "certificate"},
			env: map[string]string{"GATEWAY_REDIS_TLS": "true", "GATEWAY_REDIS_TLS_CA_FILE": certs.OtherCAFile,
				"GATEWAY_REDIS_TLS_CERT_FILE": certs.ClientCert, "GATEWAY_REDIS_TLS_KEY_FILE": certs.ClientKey}},
		{name: "plain TCP to a TLS port", why: []string{`"redis"`}},
	})
}

func TestSecureRedisTLSServerVerification(t *testing.T) {
	certs := testenv.GenerateCerts(t)
	r := testenv.StartRedisTLS(t, certs, false)
	h := newHarnessOn(t, r, tlsOptions(t, certs), testenv.StartConsul(t), "")
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	runAuthCases(t, h, b, []authCase{
		{name: "CA only", ready: true,
			env: map[string]string{"GATEWAY_REDIS_TLS": "true", "GATEWAY_REDIS_TLS_CA_FILE": certs.CAFile}},
		{name: "system roots do not know the test CA", why: []string{`"redis"`, "certificate"},
			env: map[string]string{"GATEWAY_REDIS_TLS": "true"}},
		{name: "server name mismatch", why: []string{`"redis"`, "certificate"},
			env: map[string]string{"GATEWAY_REDIS_TLS": "true", "GATEWAY_REDIS_TLS_CA_FILE": certs.CAFile,
				"GATEWAY_REDIS_TLS_SERVER_NAME": "redis.example.com"}},
	})
}

func TestSecureConsulACLToken(t *testing.T) {
	const token = "c0ffee00-aaaa-bbbb-cccc-000000000001"
	c := testenv.StartConsul(t, testenv.ACLConfig(t, token)...)
	h := newHarnessOn(t, testenv.StartRedis(t), &redis.Options{}, c, token)
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	runAuthCases(t, h, b, []authCase{
		{name: "management token", env: map[string]string{"GATEWAY_CONSUL_TOKEN": token}, ready: true},
		{name: "unknown token", env: map[string]string{"GATEWAY_CONSUL_TOKEN": "deadbeef-0000-0000-0000-00000000dead"},
			why: []string{`"consul"`, "ACL not found"}},
		{name: "no token", why: []string{`"consul"`, "no consul.token"}},
	}, token, "deadbeef-0000-0000-0000-00000000dead")
}

// TestSecureProcessNeverLogsSecrets runs the gateway binary at debug level
// with wrong credentials everywhere (so every error path that could echo
// them runs), then with an invalid config carrying the secrets, and checks
// that nothing it writes (slog, go-redis's own logger, the exit error)
// contains a secret.
func TestSecureProcessNeverLogsSecrets(t *testing.T) {
	const redisPass, consulToken, adminToken = "rp-LEAK-1111", "ct-LEAK-2222", "at-LEAK-3333"
	token := "c0ffee00-aaaa-bbbb-cccc-000000000002"
	r := testenv.StartRedis(t, "--requirepass", "the-real-one")
	c := testenv.StartConsul(t, testenv.ACLConfig(t, token)...)
	h := newHarnessOn(t, r, &redis.Options{Password: "the-real-one"}, c, token)
	h.writeRules(e2eRules)
	cfgPath, admin := h.writeConfig("gateway.yaml", "gw-leak", []string{"orders"}, "")
	env := append(os.Environ(), "GATEWAY_REDIS_PASSWORD="+redisPass, "GATEWAY_CONSUL_TOKEN="+consulToken,
		"GATEWAY_ADMIN_TOKEN="+adminToken, "GATEWAY_LOG_LEVEL=debug", "GATEWAY_REDIS_USERNAME=someone")

	p := &gwProc{admin: admin, done: make(chan struct{}), log: &lockedLog{}}
	p.cmd = exec.Command(gatewayBinary(t), "run", "--config", cfgPath)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	h.admin = admin
	body := h.expectNotReady(`"redis"`, `"consul"`, "WRONGPASS", "ACL not found")
	time.Sleep(2 * time.Second) // let the retry loops log a few more times
	p.signal(t, syscall.SIGTERM)
	code := p.wait(t, 15*time.Second)
	out := p.log.String()
	t.Logf("exit %d; %d bytes of log, e.g. %s", code, len(out), firstLines(out, 3))
	assertNoSecret(t, "gateway output", out, redisPass, consulToken, adminToken)
	assertNoSecret(t, "/readyz", body, redisPass, consulToken, adminToken)

	bad := filepath.Join(h.dir, "bad.yaml")
	text := fmt.Sprintf("redis: {addrs: [%q], password: %s}\nconsumer: {streams: [orders]}\nconsul: {token: %s}\nadmin: {token: %s, listen: \"\"}\n",
		r.Addr, redisPass, consulToken, adminToken)
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gatewayBinary(t), "run", "--config", bad)
	cmd.Env = env
	cfgOut, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(cfgOut), "admin.listen") {
		t.Errorf("invalid config: err %v, output %q, want a failure naming admin.listen", err, cfgOut)
	}
	assertNoSecret(t, "config error output", string(cfgOut), redisPass, consulToken, adminToken)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], " | ")
}

func TestSecureConsulTLS(t *testing.T) {
	certs := testenv.GenerateCerts(t)
	httpsPort := testenv.FreePort(t)
	c := testenv.StartConsul(t, testenv.ConsulTLSConfig(t, certs, httpsPort, true)...)
	h := newHarnessOn(t, testenv.StartRedis(t), &redis.Options{}, c, "")
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	https := "127.0.0.1:" + strconv.Itoa(httpsPort)
	runAuthCases(t, h, b, []authCase{
		{name: "https with CA and client cert", ready: true, env: map[string]string{
			"GATEWAY_CONSUL_ADDRESS": https, "GATEWAY_CONSUL_SCHEME": "https", "GATEWAY_CONSUL_TLS_CA_FILE": certs.CAFile,
			"GATEWAY_CONSUL_TLS_CERT_FILE": certs.ClientCert, "GATEWAY_CONSUL_TLS_KEY_FILE": certs.ClientKey}},
		{name: "https without client cert", why: []string{`"consul"`, "last_error"}, env: map[string]string{
			"GATEWAY_CONSUL_ADDRESS": https, "GATEWAY_CONSUL_SCHEME": "https", "GATEWAY_CONSUL_TLS_CA_FILE": certs.CAFile}},
		{name: "https, server signed by another CA", why: []string{`"consul"`, "certificate"}, env: map[string]string{
			"GATEWAY_CONSUL_ADDRESS": https, "GATEWAY_CONSUL_SCHEME": "https", "GATEWAY_CONSUL_TLS_CA_FILE": certs.OtherCAFile,
			"GATEWAY_CONSUL_TLS_CERT_FILE": certs.ClientCert, "GATEWAY_CONSUL_TLS_KEY_FILE": certs.ClientKey}},
		{name: "plain http to the https port", why: []string{`"consul"`}, env: map[string]string{
			"GATEWAY_CONSUL_ADDRESS": https}},
	})
}

// TestSecureAdminTokenEndToEnd: with admin.token set (from the env), the
// running gateway's admin endpoints need the bearer token; the probes
// do not.
func TestSecureAdminTokenEndToEnd(t *testing.T) {
	const token = "adm-e2e-Zz81"
	h := newHarness(t)
	h.writeRules(e2eRules)
	h.backend("orders", "orders-1")
	t.Setenv("GATEWAY_ADMIN_TOKEN", token)
	logs := h.startLogged([]string{"orders"}, "")
	h.expectReady()
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/rules", "Bearer nope", 401},
		{"GET", "/instances", "bearer " + token, 401},
		{"POST", "/explain", "", 401},
		{"GET", "/metrics", "Bearer " + token, 200},
		{"GET", "/rules", "Bearer " + token, 200},
		{"GET", "/instances", "Bearer " + token, 200},
		{"POST", "/explain", "Bearer " + token, 200},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+h.admin+tc.path, strings.NewReader(`{"stream":"orders","fields":{"type":"order.created"}}`))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with %q = %d, want %d", tc.method, tc.path, tc.auth, resp.StatusCode, tc.want)
		}
	}
	if err := h.stopErr(); err != nil {
		t.Errorf("serve: %v", err)
	}
	assertNoSecret(t, "gateway log", logs.String(), token)
}
