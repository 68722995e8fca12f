// Package testenv starts real servers for integration tests: redis-server
// (single node or a Redis Cluster) and a Consul dev agent, each on free
// loopback ports, each stopped when the test ends.
//
// A missing binary is a test failure, never a skip: `make setup` installs
// both (redis-server from Debian, Consul built into .tools/bin).
package testenv
