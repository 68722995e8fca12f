package discovery

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"
)

// Instance is one passing instance of a service, as Consul's health
// endpoint reports it. Instances in published snapshots are shared: treat
// them, and their Tags, as read-only.
type Instance struct {
	// ID is the Consul service ID (unique per node, not across nodes).
	ID string
	// Service is the Consul service name.
	Service string
	// Node is the Consul node the instance is registered on.
	Node string
	// Address is the service address, or the node address when the service
	// registered none.
	Address string
	Port    int
	Tags    []string
	// Weight is service meta "weight": a positive finite number, default 1.
	// Anything else is read as 1 (and logged once per instance and value).
	Weight float64
	// Declarations are the instance's subscription declarations (service
	// meta keys gateway-sub-NAME), sorted by Name; nil when it has none.
	Declarations []Declaration
}

// DeclarationPrefix starts the service meta keys that declare subscriptions.
const DeclarationPrefix = "gateway-sub-"

// Declaration is one subscription an instance declares in its service
// meta: key gateway-sub-NAME, value a JSON object. Discovery does not
// validate it; the subscriptions package compiles it.
type Declaration struct {
	Name  string // NAME of the meta key, as registered
	Value string // the meta value, as registered
	// Key identifies the declaration's content: "gateway-sub-NAME@" and
	// the first 16 hex digits of the value's SHA-256. Instances declaring
	// the same NAME with the same value share it; a subscription route
	// lists it in its Tags so that the balancer picks only among them.
	Key string
}

// DeclarationKey is the Key of a declaration of name with value.
func DeclarationKey(name, value string) string {
	sum := sha256.Sum256([]byte(value))
	return DeclarationPrefix + name + "@" + hex.EncodeToString(sum[:8])
}

// declarations extracts the gateway-sub-* entries of meta, sorted by name.
func declarations(meta map[string]string) []Declaration {
	var out []Declaration
	for k, v := range meta {
		if name, ok := strings.CutPrefix(k, DeclarationPrefix); ok {
			out = append(out, Declaration{Name: name, Value: v, Key: DeclarationKey(name, v)})
		}
	}
	slices.SortFunc(out, func(a, b Declaration) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Addr is "host:port", with IPv6 hosts bracketed.
func (i Instance) Addr() string {
	return net.JoinHostPort(i.Address, strconv.Itoa(i.Port))
}

// WeightMetaKey is the service meta key holding an instance's weight.
const WeightMetaKey = "weight"

// parseWeight reads the weight meta value. ok is false when the value is
// present but not a positive finite number; the weight is then 1.
func parseWeight(meta map[string]string) (w float64, ok bool) {
	raw, present := meta[WeightMetaKey]
	if !present {
		return 1, true
	}
	w, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || !(w > 0) || math.IsInf(w, 0) {
		return 1, false
	}
	return w, true
}

// badWeight is an instance whose weight meta could not be used.
type badWeight struct {
	key instanceKey
	raw string
}

type instanceKey struct{ node, id string }

// fromEntries converts a health answer into a snapshot sorted by node and
// ID, dropping entries without a service. It also returns the instances
// with an unusable weight.
func fromEntries(service string, entries []*api.ServiceEntry) ([]Instance, []badWeight) {
	out := make([]Instance, 0, len(entries))
	var bad []badWeight
	for _, en := range entries {
		if en == nil || en.Service == nil {
			continue
		}
		s := en.Service
		inst := Instance{
			ID:      s.ID,
			Service: cmp.Or(s.Service, service),
			Address: s.Address,
			Port:    s.Port,
			Tags:    slices.Clone(s.Tags),
		}
		if en.Node != nil {
			inst.Node = en.Node.Node
			if inst.Address == "" {
				inst.Address = en.Node.Address
			}
		}
		inst.Declarations = declarations(s.Meta)
		w, ok := parseWeight(s.Meta)
		inst.Weight = w
		if !ok {
			bad = append(bad, badWeight{key: instanceKey{inst.Node, inst.ID}, raw: s.Meta[WeightMetaKey]})
		}
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	return out, bad
}

// equalSnapshots compares two sorted snapshots field by field.
func equalSnapshots(a, b []Instance) bool {
	return slices.EqualFunc(a, b, func(x, y Instance) bool {
		return x.ID == y.ID && x.Service == y.Service && x.Node == y.Node &&
			x.Address == y.Address && x.Port == y.Port && x.Weight == y.Weight &&
			slices.Equal(x.Tags, y.Tags) && slices.Equal(x.Declarations, y.Declarations)
	})
}
