package slsemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"

	"vpnauthz/internal/emulator/cred"
)

const (
	testProject  = "vpn-audit"
	testLogstore = "findings"

	plainKeyID  = "LTAI5tPlainKey"
	plainSecret = "plain-secret-0123456789"
	stsKeyID    = "STS.NUgYrLnoC37mZZCNnAbez"
	stsSecret   = "sts-secret-0123456789"
	stsToken    = "CAISzQJ1q6Ft5B2yfSjIr5bkGO3ztoxy"
)

func testCredentials() []cred.Credential {
	return []cred.Credential{
		{AccessKeyID: plainKeyID, AccessKeySecret: plainSecret},
		{AccessKeyID: stsKeyID, AccessKeySecret: stsSecret, SecurityToken: stsToken, Expires: time.Now().Add(time.Hour)},
	}
}

// newTestServer starts a server with the test keys and one logstore.
func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Credentials == nil {
		opts.Credentials = testCredentials()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	s.CreateProject(testProject)
	if err := s.CreateLogStore(testProject, testLogstore); err != nil {
		t.Fatal(err)
	}
	return s
}

// redirectingClient dials addr whatever host a request names, which is how
// the SDK's "{project}.{endpoint}" hosts reach the emulator.
func redirectingClient(t *testing.T, addr string, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	t.Helper()
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		},
	}
	t.Cleanup(transport.CloseIdleConnections)
	var rt http.RoundTripper = transport
	if wrap != nil {
		rt = wrap(rt)
	}
	return &http.Client{Transport: rt, Timeout: 10 * time.Second}
}

func newClient(t *testing.T, s *Server, keyID, secret, token string) sls.ClientInterface {
	t.Helper()
	c := sls.CreateNormalInterface(s.Endpoint(), keyID, secret, token)
	c.SetHTTPClient(redirectingClient(t, s.Addr(), nil))
	c.SetRetryTimeout(5 * time.Second)
	return c
}

// noServerRetries makes 5xx replies reach the caller at once.
func noServerRetries(t *testing.T) {
	t.Helper()
	saved := sls.RetryOnServerErrorEnabled
	sls.RetryOnServerErrorEnabled = false
	t.Cleanup(func() { sls.RetryOnServerErrorEnabled = saved })
}

// entry builds a log from alternating keys and values.
func entry(at time.Time, keyValues ...string) *sls.Log {
	l := &sls.Log{Time: proto.Uint32(uint32(at.Unix()))}
	for i := 0; i+1 < len(keyValues); i += 2 {
		l.Contents = append(l.Contents, &sls.LogContent{Key: proto.String(keyValues[i]), Value: proto.String(keyValues[i+1])})
	}
	return l
}

func group(topic, source string, tags map[string]string, logs ...*sls.Log) *sls.LogGroup {
	g := &sls.LogGroup{Topic: proto.String(topic), Source: proto.String(source), Logs: logs}
	for k, v := range tags {
		g.LogTags = append(g.LogTags, &sls.LogTag{Key: proto.String(k), Value: proto.String(v)})
	}
	return g
}

// wantLog is what the server should store for entry(at, keyValues...) in a group.
func wantLog(at time.Time, topic, source string, tags map[string]string, keyValues ...string) Log {
	l := Log{Time: uint32(at.Unix()), Topic: topic, Source: source, Tags: tags, Contents: map[string]string{}}
	for i := 0; i+1 < len(keyValues); i += 2 {
		l.Contents[keyValues[i]] = keyValues[i+1]
		l.Keys = append(l.Keys, keyValues[i])
	}
	return l
}

func assertLogs(t *testing.T, got, want []Log) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d logs, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("log %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// assertSLSError checks the error the SDK hands to its caller.
func assertSLSError(t *testing.T, err error, status int, code string) *sls.Error {
	t.Helper()
	var se *sls.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not an *sls.Error", err, err)
	}
	if int(se.HTTPCode) != status || se.Code != code {
		t.Fatalf("got %d %s (%s), want %d %s", se.HTTPCode, se.Code, se.Message, status, code)
	}
	if code != "ClientError" && len(se.RequestID) != 24 {
		t.Errorf("request id %q is not 24 hex digits", se.RequestID)
	}
	return se
}

// rawCall is a request signed by the SDK's own v1 signer, for what the SDK's
// calls never send (other routes, broken headers, bad bodies).
type rawCall struct {
	method  string
	uri     string
	headers map[string]string
	body    []byte
	keyID   string // default plainKeyID
	secret  string // default plainSecret
	date    time.Time
	// after signing, before sending
	edit func(*http.Request)
}

type rawReply struct {
	status    int
	requestID string
	body      []byte
	errorBody
}

func (s *Server) doRaw(t *testing.T, c rawCall) rawReply {
	t.Helper()
	if c.keyID == "" {
		c.keyID, c.secret = plainKeyID, plainSecret
	}
	if c.date.IsZero() {
		c.date = time.Now()
	}
	h := map[string]string{
		"x-log-apiversion": "0.6.0",
		"Date":             c.date.UTC().Format(http.TimeFormat),
	}
	for k, v := range c.headers {
		if v == "" {
			delete(h, k) // an empty value leaves the header out
			continue
		}
		h[k] = v
	}
	if err := sls.NewSignerV1(c.keyID, c.secret).Sign(c.method, c.uri, h, c.body); err != nil {
		t.Fatalf("sign: %v", err)
	}
	req, err := http.NewRequest(c.method, "http://"+testProject+"."+s.Addr()+c.uri, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	if c.edit != nil {
		c.edit(req)
	}
	resp, err := redirectingClient(t, s.Addr(), nil).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.uri, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	reply := rawReply{status: resp.StatusCode, requestID: resp.Header.Get("x-log-requestid")}
	if resp.StatusCode != http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("error reply Content-Type %q, want application/json", ct)
		}
		if err := json.Unmarshal(body, &reply.errorBody); err != nil {
			t.Fatalf("error body %q: %v", body, err)
		}
	}
	reply.body = body
	return reply
}

func marshalGroup(t *testing.T, g *sls.LogGroup) []byte {
	t.Helper()
	b, err := proto.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
