package router

import (
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/msgroute/gateway/balancer"
	"github.com/msgroute/gateway/discovery"
	"github.com/msgroute/gateway/rules"
)

// testRules compiles the text of a rules file.
func testRules(tb testing.TB, yaml string) *rules.Set {
	tb.Helper()
	set, err := rules.Compile([]rules.Source{{Name: "rules.yaml", Data: []byte(yaml)}})
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// testBalancer returns a default balancer holding n instances of each of
// services (IDs svc0, svc1..., ports 10000 up; nothing listens there).
func testBalancer(tb testing.TB, n int, services ...string) *balancer.Balancer {
	tb.Helper()
	bal, err := balancer.New(balancer.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, svc := range services {
		insts := make([]discovery.Instance, n)
		for i := range insts {
			insts[i] = discovery.Instance{ID: svc + strconv.Itoa(i), Service: svc, Node: "n",
				Address: "127.0.0.1", Port: 10000 + i, Weight: 1}
		}
		bal.Update(svc, insts)
	}
	return bal
}

// quietLogger discards what the router logs.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
