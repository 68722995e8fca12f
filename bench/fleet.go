package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/msgroute/gateway/internal/backend"
)

// fleetSpec describes a set of in-process backend instances of one service.
type fleetSpec struct {
	Service   string
	Instances int
	Latency   backend.Latency
	// Slow instances (the first Slow ones) use Latency scaled by SlowFactor.
	Slow       int
	SlowFactor float64
	ErrorRate  float64
}

// fleet is a running set of backends registered in Consul. Messages they
// receive go to the current recorder, swapped per run.
type fleet struct {
	spec     fleetSpec
	backends []*backend.Backend
	addrs    []string
	ids      []string
	rec      atomic.Pointer[recorder]
	consul   *api.Client
	cancel   context.CancelFunc
	done     chan error
}

// startFleet starts the instances, registers them and waits until Consul
// reports every one passing.
func startFleet(ctx context.Context, consulAddr string, spec fleetSpec) (*fleet, error) {
	client, err := api.NewClient(&api.Config{Address: consulAddr})
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f := &fleet{spec: spec, consul: client, cancel: cancel, done: make(chan error, spec.Instances)}
	for i := range spec.Instances {
		lat := spec.Latency
		if i < spec.Slow {
			lat = lat.Scale(spec.SlowFactor)
		}
		id := fmt.Sprintf("%s-%d", spec.Service, i)
		b, err := backend.New(backend.Config{
			Name: spec.Service, ID: id, Latency: lat, ErrorRate: spec.ErrorRate, BatchPath: batchPathPrefix,
			OnMessage: func(m *backend.Message) {
				if r := f.rec.Load(); r != nil {
					r.observe(i, m)
				}
			},
		})
		if err != nil {
			f.Close()
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("listen: %w", err)
		}
		go func() { f.done <- b.Run(runCtx, ln) }()
		f.backends = append(f.backends, b)
		f.addrs = append(f.addrs, ln.Addr().String())
		f.ids = append(f.ids, id)
		err = backend.Register(ctx, client, backend.Registration{
			Service: spec.Service, ID: id, Addr: ln.Addr().String(),
			CheckInterval: time.Second, DeregisterAfter: time.Minute,
		})
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := backend.WaitPassing(wctx, client, spec.Service, spec.Instances); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// record routes receipts to r (nil: ignore them).
func (f *fleet) record(r *recorder) { f.rec.Store(r) }

// Close deregisters and stops every instance.
func (f *fleet) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, id := range f.ids {
		errs = append(errs, backend.Deregister(ctx, f.consul, id))
	}
	f.cancel()
	for range f.backends {
		errs = append(errs, <-f.done)
	}
	return errors.Join(errs...)
}

// stats returns each instance's counters.
func (f *fleet) stats() []backend.Stats {
	out := make([]backend.Stats, len(f.backends))
	for i, b := range f.backends {
		out[i] = b.Stats()
	}
	return out
}
