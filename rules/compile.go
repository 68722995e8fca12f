package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// maxFileSize bounds one rules file. Ten thousand routes fit in a few MiB.
const maxFileSize = 16 << 20

// Load reads the rules at path, a file or a directory, and compiles them. A
// directory contributes its *.yaml files (not hidden ones, not
// subdirectories) in name order, merged into one set with names unique across
// files. Compile errors come back as a *LoadError listing every problem; I/O
// errors are returned wrapped.
func Load(path string) (*Set, error) {
	srcs, err := readSources(path)
	if err != nil {
		return nil, err
	}
	return Compile(srcs)
}

func readSources(path string) ([]Source, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	files := []string{path}
	if info.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		files = files[:0]
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || filepath.Ext(name) != ".yaml" {
				continue
			}
			full := filepath.Join(path, name)
			// Stat follows symlinks (Kubernetes mounts files as links into ..data).
			if fi, err := os.Stat(full); err != nil || fi.IsDir() {
				continue
			}
			files = append(files, full)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("load rules: no *.yaml files in directory %s", path)
		}
	}
	srcs := make([]Source, 0, len(files))
	for _, f := range files {
		data, err := readLimited(f)
		if err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		srcs = append(srcs, Source{Name: f, Data: data})
	}
	return srcs, nil
}

func readLimited(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, larger than the limit of %d", name, len(data), maxFileSize)
	}
	return data, nil
}

// Compile builds a Set from rules sources, in order. It reads the JSON Schema
// files routes name (relative to their rules file's directory). Any error
// rejects the whole set: the result is then nil and a *LoadError.
func Compile(sources []Source) (*Set, error) {
	c := &compiler{
		names:   map[string]*Route{},
		schemas: map[string]*jsonschema.Schema{},
		hash:    sha256.New(),
		schemaC: jsonschema.NewCompiler(),
	}
	for _, src := range sources {
		hashPart(c.hash, []byte(src.Name))
		hashPart(c.hash, src.Data)
	}
	for _, src := range sources {
		c.compileFile(src)
	}
	if len(c.problems) > 0 {
		return nil, &LoadError{Problems: c.problems}
	}
	return c.build(sources), nil
}

// hashPart writes a length-prefixed part, so ("ab","c") and ("a","bc") differ.
func hashPart(h hash.Hash, p []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(p)))
	h.Write(n[:])
	h.Write(p)
}

type compiler struct {
	problems []Problem
	warns    []Problem // remarks that do not reject the set (see Check)
	routes   []*Route
	names    map[string]*Route
	def      *Default
	defAt    string // file:line of the default section
	hash     hash.Hash
	schemas  map[string]*jsonschema.Schema // by absolute path
	schemaC  *jsonschema.Compiler
}

func (c *compiler) errorf(file string, line int, route, format string, args ...any) {
	c.problems = append(c.problems, Problem{File: file, Line: line, Route: route, Message: fmt.Sprintf(format, args...)})
}

func (c *compiler) compileFile(src Source) {
	root, perr := parseDocument(src.Data)
	if perr != nil {
		c.errorf(src.Name, perr.line, "", "%s", perr.msg)
		return
	}
	if root == nil {
		// A file caught mid-write (truncated, not yet filled) reads as empty;
		// accepting it would publish a set without routes.
		c.errorf(src.Name, 0, "", "empty rules file (write \"routes: []\" for a file without routes)")
		return
	}
	errs := mapping(root, func(key string, k, v *yaml.Node) {
		switch key {
		case "routes":
			c.compileRoutes(src.Name, v)
		case "default":
			c.compileDefault(src.Name, k, v)
		default:
			c.errorf(src.Name, k.Line, "", "unknown key %q (want routes or default)", key)
		}
	})
	for _, e := range errs {
		c.errorf(src.Name, e.line, "", "%s", e.msg)
	}
}

func (c *compiler) compileRoutes(file string, n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		c.errorf(file, n.Line, "", "routes must be a list")
		return
	}
	for _, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			c.errorf(file, item.Line, "", "each route must be a mapping")
			continue
		}
		if r := c.compileRoute(file, item); r != nil {
			c.routes = append(c.routes, r)
		}
	}
}

func (c *compiler) compileDefault(file string, k, n *yaml.Node) {
	at := fmt.Sprintf("%s:%d", file, k.Line)
	if c.def != nil {
		c.errorf(file, k.Line, "", "default is already set at %s", c.defAt)
		return
	}
	c.def, c.defAt = &Default{Action: ActionDLQ}, at
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		c.errorf(file, n.Line, "", "default must be a mapping with keys action and service")
		return
	}
	actionLine, serviceLine := k.Line, k.Line
	errs := mapping(n, func(key string, k, v *yaml.Node) {
		s, err := scalarString(v)
		if err != nil {
			c.errorf(file, k.Line, "", "default.%s %v", key, err)
			return
		}
		switch key {
		case "action":
			actionLine = k.Line
			switch a := Action(s); a {
			case ActionDLQ, ActionDrop, ActionRoute:
				c.def.Action = a
			default:
				c.errorf(file, k.Line, "", "default.action %q is not one of dlq, drop, route", s)
			}
		case "service":
			c.def.Service, serviceLine = s, k.Line
		default:
			c.errorf(file, k.Line, "", "unknown key %q in default (want action or service)", key)
		}
	})
	for _, e := range errs {
		c.errorf(file, e.line, "", "%s", e.msg)
	}
	switch {
	case c.def.Action == ActionRoute && c.def.Service == "":
		c.errorf(file, actionLine, "", "default.service is required with action: route")
	case c.def.Action != ActionRoute && c.def.Service != "":
		// Harmless (the contract's own example has it): a warning.
		c.warns = append(c.warns, Problem{File: file, Line: serviceLine, Warning: true,
			Message: fmt.Sprintf("default.service is ignored: it is only used with action: route (action is %s)", c.def.Action)})
	case c.def.Service != "" && !validName(c.def.Service):
		c.errorf(file, actionLine, "", "default.service %q must not contain spaces or control characters", c.def.Service)
	}
}

// build assembles the Set from valid routes.
func (c *compiler) build(sources []Source) *Set {
	s := &Set{loadedAt: time.Now(), def: Default{Action: ActionDLQ}}
	for _, src := range sources {
		s.files = append(s.files, src.Name)
	}
	if c.def != nil {
		s.def = *c.def
	}
	s.remarks = c.warns
	// Stable: equal priorities keep file order.
	sort.SliceStable(c.routes, func(i, j int) bool { return c.routes[i].Priority > c.routes[j].Priority })
	s.routes = c.routes
	services := map[string]bool{}
	for _, r := range s.routes {
		services[r.Service] = true
		if r.match != nil {
			s.uses |= r.match.uses
		}
		if r.pathExpr != nil {
			s.uses |= r.pathExpr.uses
		}
		if r.orderKey != nil {
			s.uses |= r.orderKey.uses
		}
	}
	if s.def.Action == ActionRoute {
		services[s.def.Service] = true
		s.defRoute = &Route{Name: DefaultRouteName, Service: s.def.Service, Method: "POST", Path: "/"}
	}
	for name := range services {
		s.services = append(s.services, name)
	}
	slices.Sort(s.services)
	s.shape = bodyShape(s.routes)
	if s.shape != nil {
		s.shapeNodes = s.shape.number()
	}
	for abs := range c.schemas {
		s.schemas = append(s.schemas, abs)
	}
	slices.Sort(s.schemas)
	s.idx = buildIndex(s.routes)
	s.version = hex.EncodeToString(c.hash.Sum(nil))
	return s
}

// loadSchema reads and compiles a JSON Schema file once per Compile. Its
// contents go into the set's version, so editing a schema changes it.
func (c *compiler) loadSchema(ruleFile, ref string) (*jsonschema.Schema, error) {
	p := ref
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(ruleFile), p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	if sch, ok := c.schemas[abs]; ok {
		return sch, nil
	}
	data, err := readLimited(p)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	url := "file://" + filepath.ToSlash(abs)
	if err := c.schemaC.AddResource(url, doc); err != nil {
		return nil, err
	}
	sch, err := c.schemaC.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid JSON Schema: %s", p, schemaErrorText(err))
	}
	hashPart(c.hash, []byte(abs))
	hashPart(c.hash, data)
	c.schemas[abs] = sch
	return sch, nil
}

// bodyShape merges what the routes' expressions observe of the body. Schema
// validation needs the whole body, so any schema disables the projection.
func bodyShape(routes []*Route) *shape {
	root := &shape{keys: map[string]*shape{}}
	for _, r := range routes {
		if r.schema != nil {
			return nil
		}
		for _, p := range []*program{r.match, r.pathExpr, r.orderKey} {
			if p == nil {
				continue
			}
			for _, path := range p.bodyPaths {
				if len(path) == 0 {
					return nil
				}
				root.add(path)
			}
		}
	}
	return root
}
