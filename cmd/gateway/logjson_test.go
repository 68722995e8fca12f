package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessJSONLogsOnly: with log.format json, every line the gateway
// process writes to stderr is a JSON object, including what its libraries
// log: go-redis while Redis goes away and comes back, and the Consul API
// client about an unparsable CONSUL_HTTP_SSL.
func TestProcessJSONLogsOnly(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	cfgPath, admin := h.writeConfig("gateway-json.yaml", "gw-json", []string{"orders"}, "")
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(text), "log: {level: warn}", "log: {level: info, format: json}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr, stdout := &lockedLog{}, &lockedLog{}
	cmd := exec.Command(gatewayBinary(t), "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_SSL=maybe")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	ready := func() error {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	}
	h.waitFor("gateway ready", 20*time.Second, ready)

	h.redis.Kill()
	h.waitFor("not ready while Redis is down", 10*time.Second, func() error {
		if ready() == nil {
			return fmt.Errorf("still ready")
		}
		return nil
	})
	before := strings.Count(stderr.String(), "\n")
	h.waitFor("log lines while Redis is down", 10*time.Second, func() error {
		if n := strings.Count(stderr.String(), "\n"); n < before+5 {
			return fmt.Errorf("%d lines since the outage", n-before)
		}
		return nil
	})
	h.redis.Start()
	h.waitFor("routing resumes", 15*time.Second, func() error {
		h.publish("orders", "type", "order.created", "payload", `{"id":"after","total":1}`)
		if b.count() < 1 {
			return fmt.Errorf("nothing routed since the restart")
		}
		return nil
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}

	lines, sawConsul := 0, false
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		line := sc.Text()
		lines++
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		if strings.Contains(line, "CONSUL_HTTP_SSL") {
			sawConsul = true
		}
	}
	if lines == 0 {
		t.Fatal("gateway wrote nothing to stderr")
	}
	if !strings.Contains(stderr.String(), `"msg":"redis client"`) {
		t.Errorf("no go-redis line (msg \"redis client\") during the outage; stderr:\n%s", stderr.String())
	}
	if !sawConsul {
		t.Errorf("no log line about CONSUL_HTTP_SSL=maybe; stderr:\n%s", stderr.String())
	}
	t.Logf("%d stderr lines, all JSON; stdout %q", lines, stdout.String())
}
