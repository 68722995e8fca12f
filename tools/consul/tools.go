//go:build tools

// Package tools pins the Consul agent used by the tests and the demo. It is a
// separate module so Consul's dependency tree never leaks into the gateway's.
package tools

import _ "github.com/hashicorp/consul"
