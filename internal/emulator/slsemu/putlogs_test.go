package slsemu

import (
	"bytes"
	"compress/zlib"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/pierrec/lz4/v4"
)

func TestPutLogsStoresWhatWasSent(t *testing.T) {
	compressions := []struct {
		name string
		typ  int
	}{
		{"lz4", sls.Compress_LZ4},
		{"zstd", sls.Compress_ZSTD},
		{"none", sls.Compress_None},
	}
	keys := []struct {
		name                 string
		keyID, secret, token string
	}{
		{"long-term key", plainKeyID, plainSecret, ""},
		{"sts token", stsKeyID, stsSecret, stsToken},
	}
	for _, comp := range compressions {
		for _, key := range keys {
			t.Run(comp.name+"/"+key.name, func(t *testing.T) {
				s := newTestServer(t, Options{})
				c := newClient(t, s, key.keyID, key.secret, key.token)
				now := time.Now()
				tags := map[string]string{"__pack_id__": "ABC-1", "env": "test"}
				g := group("finding", "10.0.0.7", tags,
					entry(now, "vpn_connection_id", "vco-123", "severity", "high", "detail", strings.Repeat("x", 600)),
					entry(now.Add(-time.Hour), "vpn_connection_id", "vco-456", "a_key", ""),
				)
				other := group("summary", "10.0.0.7", nil, entry(now, "scanned", "2"))

				err := c.PostLogStoreLogsV2(testProject, testLogstore, &sls.PostLogStoreLogsRequest{LogGroup: g, CompressType: comp.typ})
				if err != nil {
					t.Fatalf("PutLogs: %v", err)
				}
				if err := c.PutLogsWithCompressType(testProject, testLogstore, other, comp.typ); err != nil {
					t.Fatalf("PutLogs: %v", err)
				}

				assertLogs(t, s.LogsByTopic(testProject, testLogstore, "finding"), []Log{
					wantLog(now, "finding", "10.0.0.7", tags, "vpn_connection_id", "vco-123", "severity", "high", "detail", strings.Repeat("x", 600)),
					wantLog(now.Add(-time.Hour), "finding", "10.0.0.7", tags, "vpn_connection_id", "vco-456", "a_key", ""),
				})
				assertLogs(t, s.LogsByTopic(testProject, testLogstore, "summary"), []Log{
					wantLog(now, "summary", "10.0.0.7", nil, "scanned", "2"),
				})
				if got := len(s.Logs(testProject, testLogstore)); got != 3 {
					t.Errorf("Logs holds %d entries, want 3", got)
				}
				st := s.Stats()
				if st.PutLogsCalls != 2 || st.PutLogsOK != 2 || st.LogsStored != 3 {
					t.Errorf("stats %+v, want 2 calls, 2 ok, 3 logs", st)
				}
				if comp.typ == sls.Compress_None && st.WireBytes != st.RawBytes {
					t.Errorf("uncompressed: wire %d bytes, raw %d", st.WireBytes, st.RawBytes)
				}
				if comp.typ != sls.Compress_None && st.WireBytes >= st.RawBytes {
					t.Errorf("%s: wire %d bytes not smaller than raw %d", comp.name, st.WireBytes, st.RawBytes)
				}
			})
		}
	}
}

func TestPutLogsRoutes(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	now := time.Now()

	if err := c.PutLogs(testProject, testLogstore, group("plain", "", nil, entry(now, "route", "logstores"))); err != nil {
		t.Fatalf("POST /logstores/{ls}: %v", err)
	}
	hashKey := "0123456789abcdef0123456789abcdef"
	if err := c.PostLogStoreLogs(testProject, testLogstore, group("hashed", "", nil, entry(now, "route", "route")), &hashKey); err != nil {
		t.Fatalf("POST /logstores/{ls}/shards/route: %v", err)
	}
	// The SDK never uses shards/lb, so sign that request with its signer directly.
	raw := marshalGroup(t, group("balanced", "", nil, entry(now, "route", "lb")))
	reply := s.doRaw(t, rawCall{
		method: http.MethodPost, uri: "/logstores/" + testLogstore + "/shards/lb", body: raw,
		headers: map[string]string{"Content-Type": "application/x-protobuf", "x-log-bodyrawsize": strconv.Itoa(len(raw))},
	})
	if reply.status != http.StatusOK || len(reply.body) != 0 {
		t.Fatalf("POST /logstores/{ls}/shards/lb: %d %s %q", reply.status, reply.ErrorCode, reply.body)
	}
	if !regexp.MustCompile(`^[0-9A-F]{24}$`).MatchString(reply.requestID) {
		t.Errorf("x-log-requestid %q is not 24 hex digits", reply.requestID)
	}
	reply = s.doRaw(t, rawCall{
		method: http.MethodPost, uri: "/logstores/" + testLogstore + "/shards/route", body: raw,
		headers: map[string]string{"Content-Type": "application/x-protobuf", "x-log-bodyrawsize": strconv.Itoa(len(raw))},
	})
	if reply.status != http.StatusBadRequest || reply.ErrorCode != "ParameterInvalid" {
		t.Errorf("shards/route without key: %d %s, want 400 ParameterInvalid", reply.status, reply.ErrorCode)
	}

	for topic, route := range map[string]string{"plain": "logstores", "hashed": "route", "balanced": "lb"} {
		logs := s.LogsByTopic(testProject, testLogstore, topic)
		if len(logs) != 1 || logs[0].Contents["route"] != route {
			t.Errorf("topic %s: stored %+v, want one log with route=%s", topic, logs, route)
		}
	}
}

// TestPutLogsRequestErrors sends what the SDK never sends, signed correctly.
func TestPutLogsRequestErrors(t *testing.T) {
	now := time.Now()
	raw := marshalGroup(t, group("t", "", nil, entry(now, "k", "v")))
	lz4Body := func(src []byte) []byte {
		out := make([]byte, lz4.CompressBlockBound(len(src)))
		n, err := lz4.CompressBlock(src, out, nil)
		if err != nil || n == 0 {
			t.Fatalf("lz4: %d %v", n, err)
		}
		return out[:n]
	}
	var deflated bytes.Buffer
	zw := zlib.NewWriter(&deflated)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	headers := func(kv ...string) map[string]string {
		h := map[string]string{"Content-Type": "application/x-protobuf", "x-log-bodyrawsize": strconv.Itoa(len(raw))}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	uri := "/logstores/" + testLogstore
	tests := []struct {
		name   string
		call   rawCall
		status int
		code   string // "" means accepted
	}{
		{"deflate is accepted", rawCall{body: deflated.Bytes(), headers: headers("x-log-compresstype", "deflate")}, 200, ""},
		{"missing api version", rawCall{body: raw, headers: headers(), edit: func(r *http.Request) { r.Header.Del("x-log-apiversion") }}, 400, "MissingAPIVersion"},
		{"missing raw size", rawCall{body: raw, headers: headers("x-log-bodyrawsize", "")}, 400, "MissingBodyRawSize"},
		{"raw size not a number", rawCall{body: raw, headers: headers("x-log-bodyrawsize", "12kB")}, 400, "InvalidBodyRawSize"},
		{"raw size not the body", rawCall{body: raw, headers: headers("x-log-bodyrawsize", strconv.Itoa(len(raw)+1))}, 400, "InvalidBodyRawSize"},
		{"unknown compression", rawCall{body: raw, headers: headers("x-log-compresstype", "snappy")}, 400, "InvalidCompressType"},
		{"lz4 garbage", rawCall{body: []byte{0xff, 0xff, 0xff, 0x00, 0x01}, headers: headers("x-log-compresstype", "lz4")}, 400, "PostBodyUncompressError"},
		{"lz4 with a wrong raw size", rawCall{body: lz4Body(raw), headers: headers("x-log-compresstype", "lz4", "x-log-bodyrawsize", strconv.Itoa(len(raw)+5))}, 400, "PostBodyUncompressError"},
		{"zstd garbage", rawCall{body: []byte("not zstd at all"), headers: headers("x-log-compresstype", "zstd")}, 400, "PostBodyUncompressError"},
		{"not a protobuf", rawCall{body: []byte("\xff\xff\xff\xff"), headers: headers("x-log-bodyrawsize", "4")}, 400, "PostBodyInvalid"},
		{"no content type", rawCall{body: raw, headers: headers("Content-Type", "")}, 400, "MissingContentType"},
		{"json content type", rawCall{body: raw, headers: headers("Content-Type", "application/json")}, 415, "InvalidContentType"},
		{"date 20 minutes old", rawCall{body: raw, headers: headers(), date: now.Add(-20 * time.Minute)}, 400, "RequestTimeTooSkewed"},
		{"date 20 minutes ahead", rawCall{body: raw, headers: headers(), date: now.Add(20 * time.Minute)}, 400, "RequestTimeTooSkewed"},
		{"no authorization", rawCall{body: raw, headers: headers(), edit: func(r *http.Request) { r.Header.Del("Authorization") }}, 401, "Unauthorized"},
		{"no signature method", rawCall{body: raw, headers: headers(), edit: func(r *http.Request) { r.Header.Del("x-log-signaturemethod") }}, 400, "MissingSignatureMethod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			tt.call.method, tt.call.uri = http.MethodPost, uri
			reply := s.doRaw(t, tt.call)
			stored := len(s.Logs(testProject, testLogstore))
			if tt.code == "" {
				if reply.status != http.StatusOK || stored != 1 {
					t.Fatalf("got %d %s %q and %d stored logs, want 200 and 1", reply.status, reply.ErrorCode, reply.ErrorMessage, stored)
				}
				return
			}
			if reply.status != tt.status || reply.ErrorCode != tt.code {
				t.Fatalf("got %d %s (%s), want %d %s", reply.status, reply.ErrorCode, reply.ErrorMessage, tt.status, tt.code)
			}
			if reply.ErrorMessage == "" || len(reply.requestID) != 24 {
				t.Errorf("error reply lacks a message or request id: %+v", reply)
			}
			if stored != 0 {
				t.Errorf("%d logs stored by a refused request", stored)
			}
			if got := s.Stats().ErrorsByCode[tt.code]; got != 1 {
				t.Errorf("ErrorsByCode[%s] = %d, want 1", tt.code, got)
			}
		})
	}
}

func TestPutLogsContentErrors(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		g    *sls.LogGroup
		code string
	}{
		{"key starts with a digit", group("t", "", nil, entry(now, "1st", "v")), "InvalidKey"},
		{"key with a dash", group("t", "", nil, entry(now, "vpn-id", "v")), "InvalidKey"},
		{"empty key", group("t", "", nil, entry(now, "", "v")), "InvalidKey"},
		{"reserved key", group("t", "", nil, entry(now, "__topic__", "v")), "InvalidKey"},
		{"key of 129 bytes", group("t", "", nil, entry(now, strings.Repeat("k", 129), "v")), "InvalidKey"},
		{"value over 1 MiB", group("t", "", nil, entry(now, "big", strings.Repeat("v", 1024*1024+1))), "PostBodyInvalid"},
		{"topic of 129 bytes", group(strings.Repeat("t", 129), "", nil, entry(now, "k", "v")), "PostBodyInvalid"},
		{"value not UTF-8", group("t", "", nil, entry(now, "k", "\xc3\x28")), "InvalidEncoding"},
		{"tag not UTF-8", group("t", "", map[string]string{"k": "\xff"}, entry(now, "k", "v")), "InvalidEncoding"},
		{"eight days old", group("t", "", nil, entry(now.Add(-8*24*time.Hour), "k", "v")), "PostBodyInvalid"},
		{"twenty minutes ahead", group("t", "", nil, entry(now.Add(20*time.Minute), "k", "v")), "PostBodyInvalid"},
		// One bad entry refuses the whole request.
		{"good then bad", group("t", "", nil, entry(now, "k", "v"), entry(now, "bad key", "v")), "InvalidKey"},
	}
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.PutLogs(testProject, testLogstore, tt.g)
			se := assertSLSError(t, err, http.StatusBadRequest, tt.code)
			if tt.name == "eight days old" && !strings.Contains(se.Message, "The post data time is out of range") {
				t.Errorf("message %q", se.Message)
			}
		})
	}
	if logs := s.Logs(testProject, testLogstore); len(logs) != 0 {
		t.Errorf("refused requests stored %d logs", len(logs))
	}
	// Edges that must pass: 128-byte key, exactly 1 MiB, 6 days old, underscore start.
	ok := group(strings.Repeat("t", 128), "", nil,
		entry(now, strings.Repeat("k", 128), "v", "_private", strings.Repeat("v", 1024*1024)),
		entry(now.Add(-6*24*time.Hour), "old", "v"))
	if err := c.PutLogs(testProject, testLogstore, ok); err != nil {
		t.Fatalf("edge values refused: %v", err)
	}
}

func TestPutLogsSizeLimits(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	now := time.Now()
	many := func(n int) *sls.LogGroup {
		g := group("bulk", "", nil)
		for i := range n {
			g.Logs = append(g.Logs, entry(now, "i", strconv.Itoa(i)))
		}
		return g
	}
	if err := c.PutLogs(testProject, testLogstore, many(4096)); err != nil {
		t.Fatalf("4096 logs: %v", err)
	}
	assertSLSError(t, c.PutLogs(testProject, testLogstore, many(4097)), http.StatusBadRequest, "PostBodyTooLarge")
	if got := len(s.Logs(testProject, testLogstore)); got != 4096 {
		t.Errorf("stored %d logs, want 4096", got)
	}

	small := newTestServer(t, Options{MaxBodyBytes: 2048, MaxLogsPerRequest: 10})
	sc := newClient(t, small, plainKeyID, plainSecret, "")
	// Compresses to far less than 2 KiB on the wire; the limit is on the raw size.
	big := group("t", "", nil, entry(now, "blob", strings.Repeat("a", 2100)))
	assertSLSError(t, sc.PutLogs(testProject, testLogstore, big), http.StatusBadRequest, "PostBodyTooLarge")
	if err := sc.PutLogs(testProject, testLogstore, group("t", "", nil, entry(now, "blob", strings.Repeat("a", 1900)))); err != nil {
		t.Fatalf("1.9 KB under a 2 KiB limit: %v", err)
	}
	g := group("t", "", nil)
	for range 11 {
		g.Logs = append(g.Logs, entry(now, "k", "v"))
	}
	assertSLSError(t, sc.PutLogs(testProject, testLogstore, g), http.StatusBadRequest, "PostBodyTooLarge")
}

func TestPutLogsUnknownProjectOrLogstore(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, plainKeyID, plainSecret, "")
	g := group("t", "", nil, entry(time.Now(), "k", "v"))
	se := assertSLSError(t, c.PutLogs("no-such-project", testLogstore, g), http.StatusNotFound, "ProjectNotExist")
	if !strings.Contains(se.Message, "no-such-project") {
		t.Errorf("message %q does not name the project", se.Message)
	}
	se = assertSLSError(t, c.PutLogs(testProject, "nosuchstore", g), http.StatusNotFound, "LogStoreNotExist")
	if se.Message != "logstore nosuchstore does not exist" {
		t.Errorf("message %q", se.Message)
	}
}
