package vpcapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"vpnauthz/internal/scan"
	"vpnauthz/internal/vpcapi"
)

// benchSource is a Source of a loopback server that answers body to every
// call at once: the client's own per-call cost (building the request,
// signing, decoding) is nearly all there is.
func benchSource(b *testing.B, body []byte) (scan.Source, *atomic.Int64) {
	b.Helper()
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
	return src, &served
}

// BenchmarkListAuthorizations measures one DescribeVpnCrossAccountAuthorizations
// call answering a page of two authorizations, most connections' answer.
func BenchmarkListAuthorizations(b *testing.B) {
	body := []byte(`{"RequestId":"R1","TotalCount":2,"PageNumber":1,"PageSize":50,"CrossAccountAuthorizations":[` +
		`{"VpnConnectionId":"vco-0001","AliUid":1210123456123456,"BindUid":1500000000000001,"BindProduct":"CEN","BindInstance":"cen-0001","CreationTime":1658201810000},` +
		`{"VpnConnectionId":"vco-0001","AliUid":1210123456123456,"BindUid":1500000000000002,"BindProduct":"CEN","BindInstance":"cen-0002","CreationTime":1658201810001}]}`)
	src, served := benchSource(b, body)
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

// BenchmarkListConnections measures one DescribeVpnConnections call
// answering a full page of 50 connections in the published shape (every
// field of the API reference's example).
func BenchmarkListConnections(b *testing.B) {
	var published struct {
		VpnConnections struct{ VpnConnection []map[string]any }
	}
	if err := json.Unmarshal(fixture(b, "DescribeVpnConnections.json"), &published); err != nil {
		b.Fatal(err)
	}
	one := published.VpnConnections.VpnConnection[0]
	conns := make([]map[string]any, 50)
	for i := range conns {
		c := map[string]any{}
		for k, v := range one {
			c[k] = v
		}
		c["VpnConnectionId"] = fmt.Sprintf("vco-%04d", i)
		conns[i] = c
	}
	body, err := json.Marshal(map[string]any{"RequestId": "R1", "TotalCount": 120, "PageNumber": 1, "PageSize": 50,
		"VpnConnections": map[string]any{"VpnConnection": conns}})
	if err != nil {
		b.Fatal(err)
	}
	src, served := benchSource(b, body)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := src.ListConnections(ctx, region, 1, 50)
			if err != nil || len(p.IDs) != 50 || p.TotalCount != 120 {
				b.Errorf("page of %d, total %d, %v", len(p.IDs), p.TotalCount, err)
				return
			}
		}
	})
	if served.Load() < int64(b.N) {
		b.Errorf("%d calls served for %d", served.Load(), b.N)
	}
}
