package slsemu

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/emulator/cred"
)

// mutator changes a request after the SDK signed it.
type mutator struct {
	next   http.RoundTripper
	mutate func(*http.Request, []byte) []byte
}

func (m *mutator) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		_ = r.Body.Close()
	}
	r = r.Clone(r.Context())
	r.Header = r.Header.Clone()
	body = m.mutate(r, body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return m.next.RoundTrip(r)
}

func flipLastByte(s string) string {
	b := []byte(s)
	b[len(b)-1] ^= 0x01
	return string(b)
}

func TestSignatureCoversSecretBodyAndSignedHeaders(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		mutate func(*http.Request, []byte) []byte
		code   string // "" means accepted
	}{
		{name: "untouched", code: ""},
		{name: "unsigned header changed", code: "", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("User-Agent", "someone-else")
			return b
		}},
		{name: "one byte of the secret", secret: flipLastByte(stsSecret), code: "SignatureNotMatch"},
		{name: "one byte of the body", code: "SignatureNotMatch", mutate: func(r *http.Request, b []byte) []byte {
			b[len(b)-1] ^= 0x01
			return b
		}},
		{name: "Content-MD5", code: "SignatureNotMatch", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("Content-MD5", strings.Repeat("0", 32))
			return b
		}},
		{name: "Date", code: "SignatureNotMatch", mutate: func(r *http.Request, b []byte) []byte {
			d, _ := http.ParseTime(r.Header.Get("Date"))
			r.Header.Set("Date", d.Add(-time.Second).UTC().Format(http.TimeFormat))
			return b
		}},
		{name: "x-log-bodyrawsize", code: "SignatureNotMatch", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("x-log-bodyrawsize", r.Header.Get("x-log-bodyrawsize")+"0")
			return b
		}},
		{name: "Content-Type", code: "SignatureNotMatch", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("Content-Type", "application/x-protobuf;v=1")
			return b
		}},
		{name: "security token", code: "SignatureNotMatch", mutate: func(r *http.Request, b []byte) []byte {
			r.Header.Set("x-acs-security-token", flipLastByte(r.Header.Get("x-acs-security-token")))
			return b
		}},
		{name: "path", code: "SignatureNotMatch", mutate: func(r *http.Request, b []byte) []byte {
			r.URL.Path += "x"
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			if tt.name == "path" {
				// The renamed logstore exists, so only the signature can refuse it.
				if err := s.CreateLogStore(testProject, testLogstore+"x"); err != nil {
					t.Fatal(err)
				}
			}
			secret := stsSecret
			if tt.secret != "" {
				secret = tt.secret
			}
			c := sls.CreateNormalInterface(s.Endpoint(), stsKeyID, secret, stsToken)
			c.SetHTTPClient(redirectingClient(t, s.Addr(), func(next http.RoundTripper) http.RoundTripper {
				if tt.mutate == nil {
					return next
				}
				return &mutator{next: next, mutate: tt.mutate}
			}))
			err := c.PutLogs(testProject, testLogstore, group("t", "", nil, entry(time.Now(), "k", "v")))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("PutLogs: %v", err)
				}
				return
			}
			assertSLSError(t, err, http.StatusUnauthorized, tt.code)
			if n := s.Stats().LogsStored; n != 0 {
				t.Errorf("%d logs stored", n)
			}
		})
	}
}

func TestCredentialProblems(t *testing.T) {
	expiredKey := cred.Credential{AccessKeyID: "STS.Expired", AccessKeySecret: "old-secret", SecurityToken: "old-token", Expires: time.Now().Add(-time.Minute)}
	tests := []struct {
		name                 string
		keyID, secret, token string
		message              string
	}{
		{"unknown key", "LTAI5tNobody", plainSecret, "", "AccessKeyId not found: LTAI5tNobody"},
		{"sts key without token", stsKeyID, stsSecret, "", "The security token you provided is invalid."},
		{"wrong token", stsKeyID, stsSecret, "CAISforged", "The security token you provided is invalid."},
		{"token of another key", stsKeyID, stsSecret, "old-token", "The security token you provided is invalid."},
		{"token with a long-term key", plainKeyID, plainSecret, stsToken, "The security token you provided is invalid."},
		{"expired token", expiredKey.AccessKeyID, expiredKey.AccessKeySecret, expiredKey.SecurityToken, "The security token you provided has expired."},
	}
	s := newTestServer(t, Options{Credentials: append(testCredentials(), expiredKey)})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, s, tt.keyID, tt.secret, tt.token)
			err := c.PutLogs(testProject, testLogstore, group("t", "", nil, entry(time.Now(), "k", "v")))
			se := assertSLSError(t, err, http.StatusUnauthorized, "Unauthorized")
			if se.Message != tt.message {
				t.Errorf("message %q, want %q", se.Message, tt.message)
			}
			if !sls.IsTokenError(err) {
				t.Errorf("sls.IsTokenError is false")
			}
		})
	}
	// A key added while serving is accepted at once.
	s.Credentials().Add(cred.Credential{AccessKeyID: "LTAI5tLate", AccessKeySecret: "late"})
	c := newClient(t, s, "LTAI5tLate", "late", "")
	if err := c.PutLogs(testProject, testLogstore, group("t", "", nil, entry(time.Now(), "k", "v"))); err != nil {
		t.Fatalf("key added later: %v", err)
	}
}

func TestSignatureV4(t *testing.T) {
	s := newTestServer(t, Options{})
	newV4 := func(secret string, wrap func(http.RoundTripper) http.RoundTripper) sls.ClientInterface {
		c := sls.CreateNormalInterface(s.Endpoint(), stsKeyID, secret, stsToken)
		c.SetHTTPClient(redirectingClient(t, s.Addr(), wrap))
		c.SetAuthVersion(sls.AuthV4)
		c.SetRegion("cn-hangzhou")
		return c
	}
	g := group("v4", "", nil, entry(time.Now(), "k", "v"))
	hash := "00aa"
	requireV4 := func(next http.RoundTripper) http.RoundTripper {
		return &mutator{next: next, mutate: func(r *http.Request, b []byte) []byte {
			if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "SLS4-HMAC-SHA256 Credential="+stsKeyID+"/") {
				t.Errorf("not a v4 request: Authorization %q", auth)
			}
			return b
		}}
	}
	if err := newV4(stsSecret, requireV4).PostLogStoreLogs(testProject, testLogstore, g, &hash); err != nil {
		t.Fatalf("v4 PutLogs: %v", err)
	}
	if _, err := newV4(stsSecret, nil).GetLogStore(testProject, testLogstore); err != nil {
		t.Fatalf("v4 GetLogStore: %v", err)
	}
	assertSLSError(t, newV4(flipLastByte(stsSecret), nil).PutLogs(testProject, testLogstore, g), http.StatusUnauthorized, "SignatureNotMatch")
	bodyFlip := func(next http.RoundTripper) http.RoundTripper {
		return &mutator{next: next, mutate: func(_ *http.Request, b []byte) []byte { b[len(b)-1] ^= 1; return b }}
	}
	assertSLSError(t, newV4(stsSecret, bodyFlip).PutLogs(testProject, testLogstore, g), http.StatusUnauthorized, "SignatureNotMatch")
	queryChange := func(next http.RoundTripper) http.RoundTripper {
		return &mutator{next: next, mutate: func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "key=00ab"; return b }}
	}
	err := newV4(stsSecret, queryChange).PostLogStoreLogs(testProject, testLogstore, g, &hash)
	assertSLSError(t, err, http.StatusUnauthorized, "SignatureNotMatch")
	if got := len(s.LogsByTopic(testProject, testLogstore, "v4")); got != 1 {
		t.Errorf("stored %d v4 logs, want 1", got)
	}
}
