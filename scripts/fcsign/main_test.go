package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/scan"
)

// verify recomputes the ACS3-HMAC-SHA256 signature of r from the published
// algorithm (canonical request: method, path, sorted query, the x-acs-* and
// content-type headers lower-cased and sorted, the signed header names, the
// payload hash, here empty; string to sign: algorithm and the hex SHA-256 of
// the canonical request), independently of the SDK the client signs with.
func verify(r *http.Request, secret string) (string, bool) {
	auth := r.Header.Get("Authorization")
	const algo = "ACS3-HMAC-SHA256"
	rest, ok := strings.CutPrefix(auth, algo+" ")
	if !ok {
		return "no " + algo + " signature", false
	}
	var signed []string
	var got string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "SignedHeaders":
			signed = strings.Split(v, ";")
		case "Signature":
			got = v
		}
	}
	var want []string
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-acs-") || lk == "content-type" {
			want = append(want, lk)
		}
	}
	slices.Sort(want)
	if !slices.Equal(signed, want) {
		return "signed headers " + strings.Join(signed, ";") + ", want " + strings.Join(want, ";"), false
	}
	var headers strings.Builder
	for _, h := range signed {
		headers.WriteString(h + ":" + strings.TrimSpace(r.Header.Get(h)) + "\n")
	}
	q := r.URL.Query()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	var query []string
	for _, k := range keys {
		query = append(query, k+"="+strings.ReplaceAll(url.QueryEscape(q.Get(k)), "+", "%20"))
	}
	canonical := r.Method + "\n" + r.URL.EscapedPath() + "\n" + strings.Join(query, "&") + "\n" +
		headers.String() + "\n" + strings.Join(signed, ";") + "\n"
	sum := sha256.Sum256([]byte(canonical))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(algo + "\n" + hex.EncodeToString(sum[:])))
	if hex.EncodeToString(mac.Sum(nil)) != got {
		return "signature mismatch over:\n" + canonical, false
	}
	return "", true
}

// TestSign: a signed request carries what FC's gateway checks, and the
// signature is the one the published algorithm gives, for a plain access
// key and for an STS token, with a query and a JSON body.
func TestSign(t *testing.T) {
	const secret = "test-secret"
	var seen *http.Request
	var seenBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen, seenBody = r, string(b)
		if why, ok := verify(r, secret); !ok {
			http.Error(w, why, http.StatusForbidden)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)

	now := time.Date(2026, 3, 1, 2, 3, 4, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		creds scan.Credentials
	}{
		{"access key", scan.Credentials{AccessKeyID: "LTAI-test", AccessKeySecret: secret}},
		{"STS token", scan.Credentials{AccessKeyID: "STS.test", AccessKeySecret: secret, SecurityToken: "token-123"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := newRequest("post", srv.URL+"/scans?dryRun=true&x=a%20b*c", `{"targets":["cn-hangzhou:*"]}`,
				[]string{"X-Vpnauthz-Authorization: Bearer tok"})
			if err != nil {
				t.Fatal(err)
			}
			sign(req, tc.creds, now)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", resp.Status, body)
			}
			if seen.Header.Get("x-acs-date") != "2026-03-01T02:03:04Z" || seen.Header.Get("x-acs-security-token") != tc.creds.SecurityToken {
				t.Errorf("date %q, token %q", seen.Header.Get("x-acs-date"), seen.Header.Get("x-acs-security-token"))
			}
			if !strings.HasPrefix(seen.Header.Get("Authorization"), "ACS3-HMAC-SHA256 Credential="+tc.creds.AccessKeyID+",") {
				t.Errorf("Authorization %q", seen.Header.Get("Authorization"))
			}
			if seenBody != `{"targets":["cn-hangzhou:*"]}` || seen.Header.Get("X-Vpnauthz-Authorization") != "Bearer tok" || seen.Method != "POST" {
				t.Errorf("the request changed on the way: %s %q %q", seen.Method, seenBody, seen.Header.Get("X-Vpnauthz-Authorization"))
			}
		})
	}

	// A wrong secret or a request changed after signing is refused.
	req, _ := newRequest("GET", srv.URL+"/health", "", nil)
	sign(req, scan.Credentials{AccessKeyID: "k", AccessKeySecret: "other"}, now)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a wrong secret: %v %v", resp, err)
	}
	req, _ = newRequest("GET", srv.URL+"/health", "", nil)
	sign(req, scan.Credentials{AccessKeyID: "k", AccessKeySecret: secret}, now)
	req.Header.Set("x-acs-date", "2026-03-01T02:03:05Z")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a changed header: %v %v", resp, err)
	}
	if _, err := newRequest("GET", srv.URL, "", []string{"no colon"}); err == nil {
		t.Error("a header without a colon was accepted")
	}
}
