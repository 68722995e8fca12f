package discovery

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/consul/api"
)

// Config tunes a Watcher. The zero value is valid: New fills defaults.
type Config struct {
	// Address of the Consul HTTP API, "host:port" or with a scheme
	// ("https://host:8501"). Default 127.0.0.1:8500 (config consul.address).
	Address string
	// Token is the ACL token (config consul.token). Default none.
	Token string
	// Datacenter to query (config consul.datacenter). Default: the agent's.
	Datacenter string

	// CAFile, CertFile and KeyFile configure TLS to Consul (PEM files).
	// Default: none, system roots for https.
	CAFile, CertFile, KeyFile string
	// InsecureSkipVerify disables verification of Consul's certificate.
	InsecureSkipVerify bool

	// WaitTime is the longest a blocking query waits for a change.
	// Default 30s. Consul adds up to WaitTime/16 of jitter.
	WaitTime time.Duration
	// MinInterval is the least time between two queries for one service,
	// so a flapping service cannot turn the watch into a busy loop. A
	// change still reaches the callback as soon as Consul answers; only a
	// second change within MinInterval waits for the rest of it.
	// Default 250ms.
	MinInterval time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed query; it
	// doubles with each consecutive failure and is jittered (between half
	// and all of the nominal value). Defaults 250ms and 5s.
	BackoffMin, BackoffMax time.Duration

	// Logger receives warnings about failing queries and invalid weights.
	// Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for Status timestamps. Default time.Now.
	Now func() time.Time
}

const (
	defaultAddress     = "127.0.0.1:8500"
	defaultWaitTime    = 30 * time.Second
	defaultMinInterval = 250 * time.Millisecond
	defaultBackoffMin  = 250 * time.Millisecond
	defaultBackoffMax  = 5 * time.Second
	// requestSlack is added to WaitTime (and Consul's jitter) to bound a
	// query whose connection silently died.
	requestSlack = 10 * time.Second
)

func (c Config) withDefaults() (Config, error) {
	c.Address = cmp.Or(c.Address, defaultAddress)
	c.WaitTime = cmp.Or(c.WaitTime, defaultWaitTime)
	c.MinInterval = cmp.Or(c.MinInterval, defaultMinInterval)
	c.BackoffMin = cmp.Or(c.BackoffMin, defaultBackoffMin)
	c.BackoffMax = cmp.Or(c.BackoffMax, defaultBackoffMax)
	if c.WaitTime < 0 || c.MinInterval < 0 {
		return c, fmt.Errorf("discovery: wait time %v and min interval %v must be positive", c.WaitTime, c.MinInterval)
	}
	if c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
		return c, fmt.Errorf("discovery: backoff min %v, max %v: want 0 < min <= max", c.BackoffMin, c.BackoffMax)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// apiConfig builds the Consul client configuration. Explicit settings win
// over the CONSUL_HTTP_* environment the client library reads.
// client fills c's defaults and returns it with a Consul API client for it.
func (c Config) client() (Config, *api.Client, error) {
	c, err := c.withDefaults()
	if err != nil {
		return c, nil, err
	}
	client, err := api.NewClient(c.apiConfig())
	if err != nil {
		return c, nil, fmt.Errorf("discovery: consul client for %s: %w", c.Address, err)
	}
	return c, client, nil
}

func (c Config) apiConfig() *api.Config {
	ac := api.DefaultConfig()
	ac.Address = c.Address
	if c.Token != "" {
		ac.Token = c.Token
	}
	if c.Datacenter != "" {
		ac.Datacenter = c.Datacenter
	}
	if c.CAFile != "" {
		ac.TLSConfig.CAFile = c.CAFile
	}
	if c.CertFile != "" {
		ac.TLSConfig.CertFile = c.CertFile
	}
	if c.KeyFile != "" {
		ac.TLSConfig.KeyFile = c.KeyFile
	}
	if c.InsecureSkipVerify {
		ac.TLSConfig.InsecureSkipVerify = true
	}
	return ac
}
