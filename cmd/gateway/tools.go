package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/msgroute/gateway/rules"
)

// cmdCheck validates rule files: one "file:line: message" line per problem,
// "file:line: warning: message" per warning; with --consul, also the
// subscriptions registered there now; exit 1 when any error was found.
func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	consulAddr := fs.String("consul", "", "also validate the subscriptions declared in this Consul agent (host:port)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	args = fs.Args()
	if len(args) == 0 && *consulAddr == "" {
		fmt.Fprintln(stderr, "usage: gateway check [--consul ADDR] FILE...")
		return exitError{2}
	}
	errs := 0
	if *consulAddr != "" {
		n, err := checkConsul(*consulAddr, stdout, stderr)
		if err != nil {
			return err
		}
		errs += n
	}
	for _, p := range rules.Check(args...) {
		if p.Warning {
			w := p
			w.Message = "warning: " + p.Message
			if p.Route != "" { // "warning:" first, then the route
				w.Route, w.Message = "", fmt.Sprintf("warning: route %q: %s", p.Route, p.Message)
			}
			fmt.Fprintln(stdout, w)
			continue
		}
		errs++
		fmt.Fprintln(stdout, p)
	}
	if errs > 0 {
		fmt.Fprintf(stderr, "%d error(s)\n", errs)
		return exitError{1}
	}
	fmt.Fprintln(stderr, "ok")
	return nil
}

// cmdTest runs rule test cases; exit 1 on any mismatch.
func cmdTest(args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: gateway test FILE")
		return exitError{2}
	}
	rep, err := rules.RunTests(args[0])
	if err != nil {
		var le *rules.LoadError
		if errors.As(err, &le) {
			for _, p := range le.Problems {
				fmt.Fprintln(stdout, p)
			}
			return exitError{1}
		}
		return err
	}
	fmt.Fprint(stdout, rep.String())
	if rep.Failed() > 0 {
		return exitError{1}
	}
	return nil
}

// fieldFlags collects repeated --field k=v.
type fieldFlags map[string]string

func (f fieldFlags) String() string { return "" }

func (f fieldFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("--field %q: want key=value", s)
	}
	f[k] = v
	return nil
}

// setPayload sets the payload field from --payload: JSON text, or @file.
func (f fieldFlags) setPayload(p string) error {
	if strings.HasPrefix(p, "@") {
		b, err := os.ReadFile(p[1:])
		if err != nil {
			return fmt.Errorf("--payload: %w", err)
		}
		f[rules.FieldPayload] = string(b)
	} else if p != "" {
		f[rules.FieldPayload] = p
	}
	return nil
}

// cmdExplain dry-runs one message against a rules file and prints the
// routes it would take, in order, as JSON.
func cmdExplain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("rules", "", "rules file or directory (required unless --consul)")
	consulAddr := fs.String("consul", "", "include the subscriptions declared in this Consul agent (host:port)")
	stream := fs.String("stream", "", "stream the message arrives on")
	payload := fs.String("payload", "", "payload: JSON text, or @file")
	fields := fieldFlags{}
	fs.Var(fields, "field", "attribute key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *path == "" && *consulAddr == "" {
		fmt.Fprintln(stderr, "gateway explain: --rules or --consul is required")
		return exitError{2}
	}
	set := emptyRules()
	if *path != "" {
		var err error
		if set, err = rules.Load(*path); err != nil {
			return err
		}
	}
	if *consulAddr != "" {
		var err error
		if set, _, err = registered(*consulAddr, set, nil, true); err != nil {
			return err
		}
	}
	if err := fields.setPayload(*payload); err != nil {
		return err
	}
	msg := rules.NewMessage(*stream, "0-1", fields, 1)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(set.Explain(msg))
}
