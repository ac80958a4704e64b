package vpcemu

import (
	"net/http"
	"strings"
	"sync"
)

// keyBook counts calls by the access key id each request was signed with.
type keyBook struct {
	mu    sync.Mutex
	byKey map[string]*Counter
}

func (b *keyBook) record(accessKey string, o outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byKey == nil {
		b.byKey = map[string]*Counter{}
	}
	c := b.byKey[accessKey]
	if c == nil {
		c = &Counter{ByCode: map[string]int{}}
		b.byKey[accessKey] = c
	}
	c.Calls++
	switch {
	case o.reset:
		c.Resets++
	case o.err == nil:
		c.OK++
	default:
		c.ByCode[o.err.code]++
		if o.err.isThrottling() {
			c.Throttled++
		} else {
			c.Errors++
		}
	}
}

func (b *keyBook) snapshot() map[string]Counter {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]Counter, len(b.byKey))
	for k, c := range b.byKey {
		var cp Counter
		cp.add(*c)
		if cp.ByCode == nil {
			cp.ByCode = map[string]int{}
		}
		out[k] = cp
	}
	return out
}

func (b *keyBook) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byKey = nil
}

// StatsByAccessKey returns a copy of the call counters by the access key id
// each call was signed with, as the request names it: calls with an unknown
// key or a bad signature are counted under the key they claim, and calls
// naming no key under "". A test running several principals at once can tell
// from it that each signed with its own key.
func (s *Server) StatsByAccessKey() map[string]Counter { return s.keys.snapshot() }

// claimedAccessKey is the access key id a request names: the Credential of a
// V3 Authorization header, or the AccessKeyId parameter of a legacy RPC call.
func claimedAccessKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		for _, part := range strings.Split(strings.TrimPrefix(h, v3Algorithm+" "), ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "Credential" {
				return v
			}
		}
		return ""
	}
	return r.URL.Query().Get("AccessKeyId")
}
