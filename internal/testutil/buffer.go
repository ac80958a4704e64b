// Package testutil holds what the tests of several packages share.
package testutil

import (
	"bytes"
	"context"
	"sync"
)

// Buffer is a bytes.Buffer that goroutines or a running process write while
// a test reads it.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced by each Write; nil until awaited
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

// Await blocks until cond holds for what was written so far, checking again
// on each write, or until ctx ends. cond gets a copy it may keep.
func (b *Buffer) Await(ctx context.Context, cond func([]byte) bool) error {
	for {
		b.mu.Lock()
		data := bytes.Clone(b.buf.Bytes())
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if cond(data) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Bytes returns a copy of what was written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
