package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
)

// Registration is how an instance announces itself in Consul.
type Registration struct {
	// Service is the Consul service name, required.
	Service string
	// ID is the instance's service ID, required and unique per agent.
	ID string
	// Addr is the host:port the instance listens on, required.
	Addr string
	// Tags are the Consul service tags; nil means none.
	Tags []string
	// Weight goes to service meta "weight" when positive; 0 leaves it unset
	// (the gateway's default is 1).
	Weight float64
	// Subscriptions are declared in service meta as gateway-sub-NAME: by
	// NAME, the JSON declaration (stream, match, ...). nil declares none.
	Subscriptions map[string]string
	// CheckInterval is the HTTP check's period; default 1s.
	CheckInterval time.Duration
	// DeregisterAfter removes the instance once its check has been critical
	// this long (a crashed instance cleans itself up); default 1m.
	DeregisterAfter time.Duration
}

// Register registers the instance with an HTTP health check on GET /health
// at its own address. The check starts critical, so the instance becomes
// routable only after its first successful check.
func Register(ctx context.Context, c *api.Client, r Registration) error {
	if r.Service == "" || r.ID == "" {
		return errors.New("register: service and id are required")
	}
	host, portStr, err := net.SplitHostPort(r.Addr)
	if err != nil {
		return fmt.Errorf("register %s: address: %w", r.ID, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("register %s: port: %w", r.ID, err)
	}
	if r.CheckInterval <= 0 {
		r.CheckInterval = time.Second
	}
	if r.DeregisterAfter <= 0 {
		r.DeregisterAfter = time.Minute
	}
	reg := &api.AgentServiceRegistration{
		ID:      r.ID,
		Name:    r.Service,
		Address: host,
		Port:    port,
		Tags:    r.Tags,
		Check: &api.AgentServiceCheck{
			CheckID:                        "service:" + r.ID,
			HTTP:                           "http://" + r.Addr + "/health",
			Method:                         "GET",
			Interval:                       r.CheckInterval.String(),
			Timeout:                        r.CheckInterval.String(),
			DeregisterCriticalServiceAfter: r.DeregisterAfter.String(),
		},
	}
	reg.Meta = map[string]string{}
	if r.Weight > 0 {
		reg.Meta["weight"] = strconv.FormatFloat(r.Weight, 'g', -1, 64)
	}
	for name, decl := range r.Subscriptions {
		reg.Meta["gateway-sub-"+name] = decl
	}
	opts := api.ServiceRegisterOpts{}.WithContext(ctx)
	if err := c.Agent().ServiceRegisterOpts(reg, opts); err != nil {
		return fmt.Errorf("register %s: %w", r.ID, err)
	}
	return nil
}

// Deregister removes the instance from the agent.
func Deregister(ctx context.Context, c *api.Client, id string) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := c.Agent().ServiceDeregisterOpts(id, q); err != nil {
		return fmt.Errorf("deregister %s: %w", id, err)
	}
	return nil
}

// WaitPassing blocks until service has at least want instances whose
// checks all pass, using Consul blocking queries, or until ctx is done.
func WaitPassing(ctx context.Context, c *api.Client, service string, want int) error {
	var index uint64
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 2 * time.Second}).WithContext(ctx)
		entries, meta, err := c.Health().Service(service, "", true, q)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("wait for %d passing %s instances: %w", want, service, ctx.Err())
			}
			return fmt.Errorf("wait for %d passing %s instances: %w", want, service, err)
		}
		if len(entries) >= want {
			return nil
		}
		index = meta.LastIndex
	}
}
