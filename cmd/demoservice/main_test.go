package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/msgroute/gateway/internal/backend"
	"github.com/msgroute/gateway/internal/testenv"
)

// TestMain lets the test binary act as demoservice itself, so the signal
// test exercises the real main without a separate go build.
func TestMain(m *testing.M) {
	if os.Getenv("DEMOSERVICE_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{name: "minimal", args: []string{"-name", "orders"}},
		{name: "all", args: []string{"-name", "orders", "-id", "o1", "-tags", "a,b", "-weight", "2", "-latency", "lognormal:2ms:8ms", "-error-rate", "0.1", "-quiet"}},
		{name: "no name", args: nil, wantErr: true},
		{name: "negative weight", args: []string{"-name", "a", "-weight", "-1"}, wantErr: true},
		{name: "unknown flag", args: []string{"-name", "a", "-bogus"}, wantErr: true},
		{name: "subscribe", args: []string{"-name", "a", "-subscribe", `trail={"stream":"orders","match":"true"}`, "-subscribe", `b-2={"stream":"x","match":"true"}`}},
		{name: "subscribe without name", args: []string{"-name", "a", "-subscribe", `{"stream":"orders"}`}, wantErr: true},
		{name: "subscribe bad name", args: []string{"-name", "a", "-subscribe", `Trail={"stream":"orders","match":"true"}`}, wantErr: true},
		{name: "subscribe not JSON", args: []string{"-name", "a", "-subscribe", `trail={stream: orders}`}, wantErr: true},
		{name: "subscribe oversized", args: []string{"-name", "a", "-subscribe", `trail={"stream":"orders","match":"` + strings.Repeat("x", 500) + `"}`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Errorf("parseFlags(%q) error = %v, wantErr %v", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestSplitTags(t *testing.T) {
	if got := splitTags(" a, b,,c "); strings.Join(got, "|") != "a|b|c" {
		t.Errorf("splitTags = %q, want [a b c]", got)
	}
	if got := splitTags(""); got != nil {
		t.Errorf("splitTags(\"\") = %q, want nil", got)
	}
}

// TestRegistersAndDeregistersOnSIGTERM runs demoservice as a process
// against a real Consul agent: it must become a passing instance with its
// tags, weight and subscription, and on SIGTERM deregister and exit 0.
func TestRegistersAndDeregistersOnSIGTERM(t *testing.T) {
	consul := testenv.StartConsul(t)
	client, err := api.NewClient(&api.Config{Address: consul.Addr})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-name", "orders", "-id", "orders-7", "-consul", consul.Addr,
		"-tags", "v2,eu", "-weight", "2", "-latency", "1ms", "-subscribe", `trail={"stream":"orders","match":"true"}`)
	cmd.Env = append(os.Environ(), "DEMOSERVICE_AS_MAIN=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := backend.WaitPassing(ctx, client, "orders", 1); err != nil {
		t.Fatalf("%v\n--- demoservice output ---\n%s", err, out.String())
	}
	entries, _, err := client.Health().Service("orders", "", true, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("passing orders = %d, %v; want 1", len(entries), err)
	}
	if s := entries[0].Service; s.ID != "orders-7" || s.Meta["weight"] != "2" || strings.Join(s.Tags, ",") != "v2,eu" ||
		s.Meta["gateway-sub-trail"] != `{"stream":"orders","match":"true"}` {
		t.Errorf("registered %+v, want id orders-7, weight 2, tags v2,eu, meta gateway-sub-trail", s)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want 0\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatalf("demoservice did not exit after SIGTERM\n%s", out.String())
	}
	services, err := client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := services["orders-7"]; ok {
		t.Errorf("orders-7 still registered after SIGTERM")
	}
	if !strings.Contains(out.String(), `msg=registered`) || !strings.Contains(out.String(), `msg=stopped`) {
		t.Errorf("log lacks registered/stopped lines:\n%s", out.String())
	}
}
