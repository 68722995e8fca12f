// Package config loads the gateway's configuration file with viper, applies
// GATEWAY_<SECTION>_<KEY> environment overrides, fills defaults and validates
// every key in one place. It is the only package that imports viper.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Config is the whole gateway configuration. The zero value is not valid;
// use Load, which fills the defaults documented on each field.
type Config struct {
	Redis    Redis    `mapstructure:"redis"`
	Consumer Consumer `mapstructure:"consumer"`
	Consul   Consul   `mapstructure:"consul"`
	Rules    Rules    `mapstructure:"rules"`
	Admin    Admin    `mapstructure:"admin"`
	Log      Log      `mapstructure:"log"`
	Balancer Balancer `mapstructure:"balancer"`
	Dispatch Dispatch `mapstructure:"dispatch"`
	AsyncAPI AsyncAPI `mapstructure:"asyncapi"`
	Tracing  Tracing  `mapstructure:"tracing"`
}

// Redis says how to reach Redis. Several addrs, or Cluster, mean Redis Cluster.
type Redis struct {
	Addrs    []string `mapstructure:"addrs"`    // default [127.0.0.1:6379]
	Cluster  bool     `mapstructure:"cluster"`  // default false; implied by len(Addrs) > 1
	Username string   `mapstructure:"username"` // ACL user; default none
	Password string   `mapstructure:"password"` // default none; prefer GATEWAY_REDIS_PASSWORD
	DB       int      `mapstructure:"db"`       // default 0; must be 0 with Cluster
	TLS      bool     `mapstructure:"tls"`      // default false
	// TLS options, used when TLS is true.
	TLSCAFile             string `mapstructure:"tls_ca_file"`
	TLSCertFile           string `mapstructure:"tls_cert_file"`
	TLSKeyFile            string `mapstructure:"tls_key_file"`
	TLSServerName         string `mapstructure:"tls_server_name"`
	TLSInsecureSkipVerify bool   `mapstructure:"tls_insecure_skip_verify"`
}

// Consumer configures how streams are read and when messages give up.
// Zero means unset for the router's keys (batch to reply_maxlen): the
// router's Config holds their defaults, derived from each other where they
// depend on each other (see router.Config).
type Consumer struct {
	Streams       []string      `mapstructure:"streams"`        // required
	Group         string        `mapstructure:"group"`          // default "gateway"
	Name          string        `mapstructure:"name"`           // default: hostname
	Batch         int           `mapstructure:"batch"`          // entries per XREADGROUP
	Block         time.Duration `mapstructure:"block"`          // XREADGROUP block
	ClaimIdle     time.Duration `mapstructure:"claim_idle"`     // XAUTOCLAIM min idle; at least 1s
	ClaimInterval time.Duration `mapstructure:"claim_interval"` // how often to XAUTOCLAIM
	MaxDeliveries int           `mapstructure:"max_deliveries"` // then DLQ
	MaxInflight   int           `mapstructure:"max_inflight"`   // messages in flight
	// ServiceConcurrency caps requests in flight per target service, so one
	// slow service cannot take every slot. Default 0: derived, per service,
	// dispatch.max_conns_per_host per instance it has.
	ServiceConcurrency int `mapstructure:"service_concurrency"`
	// ServiceLimits overrides ServiceConcurrency per service name,
	// e.g. {legacy-billing: 8}; from the environment
	// GATEWAY_CONSUMER_SERVICE_LIMITS=legacy-billing=8,orders=32. Default none.
	ServiceLimits   map[string]int `mapstructure:"service_limits"`
	DLQStream       string         `mapstructure:"dlq_stream"`        // default "gateway:dlq"
	MaxPayloadBytes int            `mapstructure:"max_payload_bytes"` // larger -> DLQ bad_message
	ReplyMaxLen     int64          `mapstructure:"reply_maxlen"`      // approximate MAXLEN of reply streams
	// Retention trims consumed streams: "off" (default) or "acked" (XTRIM
	// MINID up to the oldest entry some consumer group has not finished).
	Retention         string        `mapstructure:"retention"`
	RetentionKeep     time.Duration `mapstructure:"retention_keep"`     // history kept regardless; default 0
	RetentionInterval time.Duration `mapstructure:"retention_interval"` // how often to trim; 0 = default 10s
	DLQMaxLen         int64         `mapstructure:"dlq_maxlen"`         // trim the DLQ beyond this; 0 = unbounded (default)
}

// Consul says where discovery asks for instances.
type Consul struct {
	Address    string `mapstructure:"address"`    // default: discovery.Config's (127.0.0.1:8500 there)
	Token      string `mapstructure:"token"`      // ACL token; prefer GATEWAY_CONSUL_TOKEN
	Datacenter string `mapstructure:"datacenter"` // default: the agent's
	Scheme     string `mapstructure:"scheme"`     // http (default) or https
	TLSCAFile  string `mapstructure:"tls_ca_file"`
	TLSCert    string `mapstructure:"tls_cert_file"`
	TLSKey     string `mapstructure:"tls_key_file"`
	// TLSInsecureSkipVerify disables certificate checks; for tests only.
	TLSInsecureSkipVerify bool `mapstructure:"tls_insecure_skip_verify"`
	// Subscriptions enables routes declared by instances in their service
	// meta (gateway-sub-NAME). Default true.
	Subscriptions bool `mapstructure:"subscriptions"`
	// SubscriptionStreams is the allow-list of streams a declaration may
	// read; each must be in consumer.streams. Default empty: every stream
	// in consumer.streams (derived where the gateway is wired).
	SubscriptionStreams []string `mapstructure:"subscription_streams"`
}

// Rules says where the rule files are.
type Rules struct {
	Path string `mapstructure:"path"` // file or directory; default configs/rules.yaml
}

// Admin configures the admin HTTP server.
type Admin struct {
	Listen string `mapstructure:"listen"` // default: health.Config's
	Token  string `mapstructure:"token"`  // bearer token; empty = no auth
}

// Log configures slog.
type Log struct {
	Level  string `mapstructure:"level"`  // debug|info|warn|error; default info
	Format string `mapstructure:"format"` // text|json; default text
}

// Balancer picks the instance selection policy.
type Balancer struct {
	Algorithm string `mapstructure:"algorithm"` // peak_ewma|least_pending|round_robin|random; default: balancer.Config's
}

// Dispatch configures the HTTP client.
type Dispatch struct {
	// Timeout bounds an attempt of a route without its own timeout; the
	// router's AttemptTimeout holds its default, derived from claim_idle.
	Timeout         time.Duration `mapstructure:"timeout"`
	MaxConnsPerHost int           `mapstructure:"max_conns_per_host"` // default: dispatch.Config's
}

// AsyncAPI fills the info object of `gateway asyncapi`. Empty fields take
// the asyncapi package's defaults (title "gateway", version "1.0.0").
type AsyncAPI struct {
	Title   string `mapstructure:"title"`
	Version string `mapstructure:"version"`
}

// Tracing configures OpenTelemetry tracing. Zero fields take the tracing
// package's defaults (tracing.Config).
type Tracing struct {
	// OTLPEndpoint is an OTLP/HTTP collector, e.g. http://collector:4318;
	// empty (default) turns tracing off.
	OTLPEndpoint string `mapstructure:"otlp_endpoint"`
	// SampleRatio is the share of new traces recorded, in (0, 1]; unset
	// means the tracing package's default, 1.
	SampleRatio float64 `mapstructure:"sample_ratio"`
}

// defaults sets the defaults this package owns: those of keys no
// component fills. Every other key is left unset, so Load passes zero and
// the component's Config fills its documented default (one source each).
func defaults(v *viper.Viper) {
	host, _ := os.Hostname()
	set := map[string]any{
		"redis.addrs": []string{"127.0.0.1:6379"}, "redis.cluster": false, "redis.username": "",
		"redis.password": "", "redis.db": 0, "redis.tls": false, "redis.tls_ca_file": "",
		"redis.tls_cert_file": "", "redis.tls_key_file": "", "redis.tls_server_name": "",
		"redis.tls_insecure_skip_verify": false,
		"consumer.streams":               []string{}, "consumer.group": "gateway", "consumer.name": host,
		"consumer.service_limits": map[string]int{},
		"consumer.dlq_stream":     "gateway:dlq", "consumer.retention": "off",
		"consul.token": "", "consul.datacenter": "",
		"consul.scheme": "http", "consul.tls_ca_file": "", "consul.tls_cert_file": "",
		"consul.tls_key_file": "", "consul.tls_insecure_skip_verify": false,
		"consul.subscriptions": true, "consul.subscription_streams": []string{},
		"rules.path":  "configs/rules.yaml",
		"admin.token": "",
		"log.level":   "info", "log.format": "text",
	}
	for k, val := range set {
		v.SetDefault(k, val)
	}
}

// bindEnv makes every key of Config known to viper, so that
// GATEWAY_<SECTION>_<KEY> overrides it even when the key has no default
// here (viper's Unmarshal only sees keys it knows).
func bindEnv(v *viper.Viper) {
	walk(reflect.TypeFor[Config](), "", func(key string) { _ = v.BindEnv(key) })
}

// walk calls fn with the dotted key of every leaf field of t.
func walk(t reflect.Type, prefix string, fn func(key string)) {
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + f.Tag.Get("mapstructure")
		if f.Type.Kind() == reflect.Struct {
			walk(f.Type, key+".", fn)
			continue
		}
		fn(key)
	}
}

// Load reads file (YAML) if non-empty, applies GATEWAY_* environment
// overrides, fills defaults and validates. Errors name the offending key.
func Load(file string) (*Config, error) {
	v := viper.New()
	defaults(v)
	v.SetEnvPrefix("GATEWAY")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	bindEnv(v)
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config %s: %w", file, err)
		}
	}
	var c Config
	hooks := mapstructure.ComposeDecodeHookFunc(
		stringToIntMap,
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)
	if err := v.UnmarshalExact(&c, viper.DecodeHook(hooks)); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	if err := c.validate(v.IsSet); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	return &c, nil
}

// stringToIntMap decodes a map[string]int given as one string, as the
// environment gives it: "orders=10,payments=20" (whitespace around items
// ignored; empty string = empty map). Other inputs pass through.
func stringToIntMap(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to != reflect.TypeFor[map[string]int]() {
		return data, nil
	}
	out := map[string]int{}
	for item := range strings.SplitSeq(data.(string), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		n, err := strconv.Atoi(v)
		if !ok || k == "" || err != nil {
			return nil, fmt.Errorf("%q: want NAME=NUMBER items separated by commas (orders=10,payments=20)", item)
		}
		out[k] = n
	}
	return out, nil
}

// KeyError is a validation failure of one configuration key.
type KeyError struct {
	Key    string
	Reason string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Reason }

// validate checks every key and fills what depends on config alone.
// isSet tells keys the user set (file or environment) from unset ones, so
// an explicit 0 can be refused while an unset key stays 0 for its
// component to fill.
func (c *Config) validate(isSet func(key string) bool) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	c.Redis.Addrs = compact(c.Redis.Addrs)
	if len(c.Redis.Addrs) == 0 {
		bad("redis.addrs", "at least one address is required")
	}
	for _, a := range c.Redis.Addrs {
		if !strings.Contains(a, ":") {
			bad("redis.addrs", "%q is not host:port", a)
		}
	}
	if len(c.Redis.Addrs) > 1 {
		c.Redis.Cluster = true
	}
	if c.Redis.Cluster && c.Redis.DB != 0 {
		bad("redis.db", "must be 0 with Redis Cluster")
	}
	if (c.Redis.TLSCertFile == "") != (c.Redis.TLSKeyFile == "") {
		bad("redis.tls_cert_file", "tls_cert_file and tls_key_file go together")
	}
	cs := &c.Consumer
	cs.Streams = compact(cs.Streams)
	if len(cs.Streams) == 0 {
		bad("consumer.streams", "at least one stream is required")
	}
	seen := map[string]bool{}
	for _, s := range cs.Streams {
		if seen[s] {
			bad("consumer.streams", "stream %q listed twice", s)
		}
		seen[s] = true
		if s == cs.DLQStream {
			bad("consumer.streams", "stream %q is the dead-letter stream", s)
		}
	}
	if cs.Group == "" {
		bad("consumer.group", "must not be empty")
	}
	if cs.Name == "" {
		bad("consumer.name", "must not be empty (hostname unknown)")
	}
	// Keys filled by a component: 0 is "unset" only when the user did not
	// write it.
	positive := []struct {
		key string
		n   int64
	}{
		{"consumer.batch", int64(cs.Batch)}, {"consumer.max_deliveries", int64(cs.MaxDeliveries)},
		{"consumer.max_inflight", int64(cs.MaxInflight)},
		{"consumer.max_payload_bytes", int64(cs.MaxPayloadBytes)}, {"consumer.reply_maxlen", cs.ReplyMaxLen},
		{"dispatch.max_conns_per_host", int64(c.Dispatch.MaxConnsPerHost)},
		{"consumer.block", int64(cs.Block)}, {"consumer.claim_interval", int64(cs.ClaimInterval)},
		{"dispatch.timeout", int64(c.Dispatch.Timeout)},
	}
	for _, p := range positive {
		if p.n < 0 || (p.n == 0 && isSet(p.key)) {
			bad(p.key, "must be > 0 (got %s)", show(p.key, p.n))
		}
	}
	if cs.ServiceConcurrency < 0 {
		bad("consumer.service_concurrency", "must be >= 0 (0: derived from the instances; got %d)", cs.ServiceConcurrency)
	}
	for svc, n := range cs.ServiceLimits {
		if n <= 0 {
			bad("consumer.service_limits."+svc, "must be > 0 (got %d)", n)
		}
	}
	if cs.ClaimIdle != 0 || isSet("consumer.claim_idle") {
		if cs.ClaimIdle < time.Second {
			bad("consumer.claim_idle", "must be at least 1s (got %s)", cs.ClaimIdle)
		} else if t := c.Dispatch.Timeout; t > 0 && t >= cs.ClaimIdle/2 {
			// Both set by the user: an entry still being dispatched must
			// not look idle to XAUTOCLAIM. One set alone derives the other.
			bad("dispatch.timeout", "%s must be less than half of consumer.claim_idle (%s); raise consumer.claim_idle or lower dispatch.timeout (unset, it is min(5s, claim_idle/3))", t, cs.ClaimIdle)
		}
	}
	if cs.DLQStream == "" {
		bad("consumer.dlq_stream", "must not be empty")
	}
	cs.Retention = strings.ToLower(strings.TrimSpace(cs.Retention))
	if cs.Retention != "off" && cs.Retention != "acked" {
		bad("consumer.retention", "must be off or acked (got %q)", cs.Retention)
	}
	if cs.RetentionKeep < 0 {
		bad("consumer.retention_keep", "must not be negative (got %s)", cs.RetentionKeep)
	}
	if cs.RetentionInterval < 0 {
		bad("consumer.retention_interval", "must not be negative (got %s)", cs.RetentionInterval)
	}
	if cs.DLQMaxLen < 0 {
		bad("consumer.dlq_maxlen", "must not be negative (got %d)", cs.DLQMaxLen)
	}
	if c.Consul.Address == "" && isSet("consul.address") {
		bad("consul.address", "must not be empty")
	}
	if c.Consul.Scheme != "http" && c.Consul.Scheme != "https" {
		bad("consul.scheme", "must be http or https (got %q)", c.Consul.Scheme)
	}
	if c.Consul.Scheme == "https" && c.Consul.Address == "" {
		bad("consul.address", "must be set with consul.scheme https")
	}
	// Empty: every consumed stream (the gateway's wiring derives it).
	c.Consul.SubscriptionStreams = compact(c.Consul.SubscriptionStreams)
	for _, s := range c.Consul.SubscriptionStreams {
		if !slices.Contains(cs.Streams, s) {
			bad("consul.subscription_streams", "stream %q is not in consumer.streams", s)
		}
	}
	if c.Rules.Path == "" {
		bad("rules.path", "must not be empty")
	}
	if c.Admin.Listen == "" && isSet("admin.listen") {
		bad("admin.listen", "must not be empty")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json (got %q)", c.Log.Format)
	}
	if e := c.Tracing.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("tracing.otlp_endpoint", "must be an http(s)://host:port URL (got %q)", e)
		}
	}
	if r := c.Tracing.SampleRatio; r < 0 || r > 1 || (r == 0 && isSet("tracing.sample_ratio")) {
		bad("tracing.sample_ratio", "must be in (0, 1] (got %v)", r)
	}
	switch c.Balancer.Algorithm {
	case "", "peak_ewma", "least_pending", "round_robin", "random":
	default:
		bad("balancer.algorithm", "must be peak_ewma, least_pending, round_robin or random (got %q)", c.Balancer.Algorithm)
	}
	return errors.Join(errs...)
}

// show renders n as the key's type: a duration for duration keys.
func show(key string, n int64) string {
	switch key {
	case "consumer.block", "consumer.claim_interval", "dispatch.timeout":
		return time.Duration(n).String()
	}
	return fmt.Sprint(n)
}

func compact(in []string) []string {
	out := in[:0]
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
