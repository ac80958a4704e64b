package vpcemu

import (
	"net/http"
	"strings"
)

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
