package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/msgroute/gateway/internal/asyncapi"
	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/rules"
)

// cmdAsyncAPI prints the AsyncAPI 3.0 document (YAML) of the configured
// streams and the routes of the rules (--rules, default rules.path).
func cmdAsyncAPI(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("asyncapi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "configs/gateway.yaml", "config file (streams, DLQ, info)")
	path := fs.String("rules", "", "rules file or directory (default: the config's rules.path)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	if *path == "" {
		*path = cfg.Rules.Path
	}
	set, err := rules.Load(*path)
	if err != nil {
		return fmt.Errorf("rules %s: %w", *path, err)
	}
	routes, err := asyncapi.FromRules(set, cfg.Consumer.Streams)
	if err != nil {
		return err
	}
	out, err := asyncapi.Marshal(asyncapi.Spec{
		Info:    asyncapi.Info{Title: cfg.AsyncAPI.Title, Version: cfg.AsyncAPI.Version},
		Servers: cfg.Redis.Addrs, Streams: cfg.Consumer.Streams, DLQStream: cfg.Consumer.DLQStream,
		Routes: routes, RulesVersion: set.Version(),
	})
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
