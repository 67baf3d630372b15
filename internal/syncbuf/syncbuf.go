// Package syncbuf holds a byte buffer that many goroutines may write while
// another reads it: what tests hand to a logger or a child process as its
// output and then search.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer for concurrent Write and String. The zero value
// is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
