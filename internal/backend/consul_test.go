package backend

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/msgroute/gateway/internal/testenv"
)

// TestRegisterInConsul registers a live backend with a real Consul agent,
// waits for its HTTP check to pass, checks tags and weight, and deregisters.
func TestRegisterInConsul(t *testing.T) {
	consul := testenv.StartConsul(t)
	client, err := api.NewClient(&api.Config{Address: consul.Addr})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Name: "orders", ID: "orders-1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	reg := Registration{Service: "orders", ID: "orders-1", Addr: ln.Addr().String(), Tags: []string{"v2", "eu"}, Weight: 3}
	if err := Register(ctx, client, reg); err != nil {
		t.Fatal(err)
	}
	if err := WaitPassing(ctx, client, "orders", 1); err != nil {
		t.Fatal(err)
	}
	entries, _, err := client.Health().Service("orders", "", true, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("passing orders = %d entries, %v; want 1", len(entries), err)
	}
	s := entries[0].Service
	if s.ID != "orders-1" || s.Meta["weight"] != "3" || len(s.Tags) != 2 || s.Address != "127.0.0.1" || s.Port != ln.Addr().(*net.TCPAddr).Port {
		t.Errorf("registered %+v, want id orders-1, weight 3, tags [v2 eu], address of %v", s, ln.Addr())
	}

	if err := Deregister(ctx, client, "orders-1"); err != nil {
		t.Fatal(err)
	}
	services, err := client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := services["orders-1"]; ok {
		t.Errorf("orders-1 still registered after Deregister")
	}
}
