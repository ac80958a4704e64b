package vpcapi_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"vpnauthz/internal/vpcapi"
)

// BenchmarkListAuthorizations measures one call through the SDK against a
// loopback server that answers a fixed page at once: the client's own
// per-call cost (building the request, signing, decoding) is all there is.
func BenchmarkListAuthorizations(b *testing.B) {
	body := []byte(`{"RequestId":"R1","TotalCount":2,"PageNumber":1,"PageSize":50,"CrossAccountAuthorizations":[` +
		`{"VpnConnectionId":"vco-0001","AliUid":1210123456123456,"BindUid":1500000000000001,"BindProduct":"CEN","BindInstance":"cen-0001","CreationTime":1658201810000},` +
		`{"VpnConnectionId":"vco-0001","AliUid":1210123456123456,"BindUid":1500000000000002,"BindProduct":"CEN","BindInstance":"cen-0002","CreationTime":1658201810001}]}`)
	var served atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	b.Cleanup(ts.Close)
	src, err := vpcapi.NewSourceFactory(vpcapi.Options{Endpoint: benchEndpoint(ts.URL)})(creds(stsCred), region)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := src.ListAuthorizations(ctx, region, "vco-0001", 1, 50)
			if err != nil || len(p.Authorizations) != 2 {
				b.Errorf("page %+v, %v", p, err)
				return
			}
		}
	})
	if served.Load() < int64(b.N) {
		b.Errorf("%d calls served for %d", served.Load(), b.N)
	}
}
