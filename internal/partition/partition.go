// Package partition maps a message key to one of N partition streams, the
// producer side of ordered delivery: a stream NAME split into NAME.0 ...
// NAME.(N-1), each read by one gateway replica at a time, keeps every key
// on one partition, so the key's messages stay in order while partitions
// spread over the replicas. Producers in other languages compute the same:
//
//	index = FNV-1a-32(key as UTF-8 bytes) mod N;  stream = NAME + "." + index
package partition

import (
	"hash/fnv"
	"strconv"
)

// Index returns the partition of key among n (0 <= Index < n). n must be
// positive.
func Index(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Stream returns the partition stream of key: base + "." + Index(key, n).
func Stream(base, key string, n int) string {
	return base + "." + strconv.Itoa(Index(key, n))
}
