package discovery

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/consul/api"
)

// Snapshot asks Consul once for the instances of every service that may
// declare subscriptions (those DeclarationFilter lists), for tools that
// inspect what is registered right now (gateway check and explain with
// --consul): only those whose checks pass when passingOnly is set, else
// all. It returns instances by service, each list sorted like a Watcher's
// snapshots.
func Snapshot(ctx context.Context, cfg Config, passingOnly bool) (map[string][]Instance, error) {
	cfg, client, err := cfg.client()
	if err != nil {
		return nil, err
	}
	q := (&api.QueryOptions{Filter: DeclarationFilter}).WithContext(ctx)
	services, _, err := client.Catalog().Services(q)
	if err != nil {
		return nil, fmt.Errorf("discovery: list services: %w", err)
	}
	out := make(map[string][]Instance, len(services))
	for _, name := range slices.Sorted(maps.Keys(services)) {
		entries, _, err := client.Health().Service(name, "", passingOnly, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("discovery: instances of %s: %w", name, err)
		}
		out[name], _ = fromEntries(name, entries)
	}
	return out, nil
}
