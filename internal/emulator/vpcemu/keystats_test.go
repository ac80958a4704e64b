package vpcemu

import (
	"testing"
)

func TestStatsByAccessKey(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	tests := []struct {
		name     string
		opts     clientOptions
		calls    int
		wantOK   bool
		wantCode string // error code when not OK
	}{
		{"V3 signature, long-term key", clientOptions{}, 3, true, ""},
		{"V3 signature, STS key", clientOptions{ak: stsAK, secret: stsSecret, token: stsToken}, 2, true, ""},
		{"legacy RPC signature", clientOptions{ak: otherStsAK, secret: "otherSecret", token: otherStsToken, rpc: true}, 1, true, ""},
		{"unknown key", clientOptions{ak: "LTAIunknownKey", secret: "whatever"}, 2, false, "InvalidAccessKeyId.NotFound"},
		{"known key, wrong secret", clientOptions{ak: stsAK, secret: "notTheSecret", token: stsToken}, 1, false, "SignatureDoesNotMatch"},
	}
	want := map[string]Counter{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, s, tc.opts)
			for range tc.calls {
				_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", knownID))
				if tc.wantOK && err != nil {
					t.Fatalf("call: %v", err)
				}
				if !tc.wantOK {
					wantSDKError(t, err, tc.wantCode, errorStatus(t, tc.wantCode))
				}
			}
		})
		ak := tc.opts.ak
		if ak == "" {
			ak = testAK
		}
		w := want[ak]
		w.Calls += tc.calls
		if tc.wantOK {
			w.OK += tc.calls
		} else {
			w.Errors += tc.calls
			if w.ByCode == nil {
				w.ByCode = map[string]int{}
			}
			w.ByCode[tc.wantCode] += tc.calls
		}
		want[ak] = w
	}

	got := s.StatsByAccessKey()
	if len(got) != len(want) {
		t.Errorf("StatsByAccessKey has %d keys, want %d: %+v", len(got), len(want), got)
	}
	total := 0
	for ak, w := range want {
		g := got[ak]
		total += g.Calls
		if g.Calls != w.Calls || g.OK != w.OK || g.Errors != w.Errors {
			t.Errorf("key %s: calls/ok/errors = %d/%d/%d, want %d/%d/%d", ak, g.Calls, g.OK, g.Errors, w.Calls, w.OK, w.Errors)
		}
		for code, n := range w.ByCode {
			if g.ByCode[code] != n {
				t.Errorf("key %s: ByCode[%s] = %d, want %d", ak, code, g.ByCode[code], n)
			}
		}
	}
	if all := s.Stats().Total().Calls; total != all {
		t.Errorf("calls by access key sum to %d, all calls %d", total, all)
	}

	s.ResetStats()
	if got := s.StatsByAccessKey(); len(got) != 0 {
		t.Errorf("after ResetStats: %+v, want empty", got)
	}
}

// errorStatus is the HTTP status the emulator answers with code.
func errorStatus(t *testing.T, code string) int {
	t.Helper()
	return newAPIError(code).status
}
