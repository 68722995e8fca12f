package streams

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientConfig says how to reach Redis. Several Addrs, or Cluster, select a
// Redis Cluster client.
type ClientConfig struct {
	Addrs    []string // required
	Cluster  bool
	Username string
	Password string
	DB       int
	TLS      bool
	// TLS options, used when TLS is true. Empty CAFile = system roots.
	CAFile, CertFile, KeyFile, ServerName string
	InsecureSkipVerify                    bool
}

// NewClient returns a go-redis client for cfg. It does not dial: the first
// command does, and go-redis reconnects on its own after a Redis restart.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("redis: no address")
	}
	var tlsCfg *tls.Config
	if cfg.TLS {
		var err error
		if tlsCfg, err = buildTLS(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Cluster || len(cfg.Addrs) > 1 {
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: cfg.Addrs, Username: cfg.Username, Password: cfg.Password, TLSConfig: tlsCfg,
			DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
			PoolSize: 64, MaxRetries: 2,
		}), nil
	}
	return redis.NewClient(&redis.Options{
		Addr: cfg.Addrs[0], Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, TLSConfig: tlsCfg,
		DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
		PoolSize: 64, MaxRetries: 2,
	}), nil
}

func buildTLS(cfg ClientConfig) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in for tests
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis tls ca %s: no certificate found", cfg.CAFile)
		}
		t.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis tls client cert: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// isBusyGroup reports Redis's answer to creating a group that exists. The
// driver exposes it only as text, so the string check lives here alone.
func isBusyGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP")
}

// isNoGroup reports that the stream or its group vanished (for example
// after a Redis restart without persistence), so the group must be re-created.
func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}
