package vpcemu

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"

	"vpnauthz/internal/emulator/cred"
)

func TestErrorCodes(t *testing.T) {
	inv := loadTestInventory(t)
	s := startServer(t, Options{Inventory: inv})
	s.Credentials().Add(cred.Credential{AccessKeyID: "STS.expired", AccessKeySecret: "expiredSecret", SecurityToken: "CAISexpired", Expires: time.Now().Add(-time.Minute)})
	known := "vco-p0w2jpkhi2eeop6q6****"

	for _, tc := range []struct {
		name   string
		o      clientOptions
		req    *vpc.DescribeVpnCrossAccountAuthorizationsRequest
		code   string
		status int
	}{
		{"missing region", clientOptions{}, &vpc.DescribeVpnCrossAccountAuthorizationsRequest{VpnConnectionId: dara.String(known)}, "MissingRegionId", 400},
		{"missing connection", clientOptions{}, &vpc.DescribeVpnCrossAccountAuthorizationsRequest{RegionId: dara.String("cn-hangzhou")}, "MissingVpnConnectionId", 400},
		{"unknown connection", clientOptions{}, authzRequest("cn-hangzhou", "vco-doesnotexist"), "InvalidVpnConnectionInstanceId.NotFound", 404},
		{"unknown region", clientOptions{}, authzRequest("cn-nowhere", known), "InvalidVpnConnectionInstanceId.NotFound", 404},
		{"connection in another region", clientOptions{}, authzRequest("ap-southeast-1", known), "InvalidVpnConnectionInstanceId.NotFound", 404},
		{"connection fault", clientOptions{}, authzRequest("cn-hangzhou", "vco-denied0000000001"), "Forbidden.RAM", 403},
		{"unknown key", clientOptions{ak: "LTAIunknown", secret: testSecret}, authzRequest("cn-hangzhou", known), "InvalidAccessKeyId.NotFound", 404},
		{"unknown key rpc", clientOptions{ak: "LTAIunknown", secret: testSecret, rpc: true}, authzRequest("cn-hangzhou", known), "InvalidAccessKeyId.NotFound", 404},
		{"wrong secret", clientOptions{ak: testAK, secret: testSecret + "x"}, authzRequest("cn-hangzhou", known), "SignatureDoesNotMatch", 400},
		{"expired token", clientOptions{ak: "STS.expired", secret: "expiredSecret", token: "CAISexpired"}, authzRequest("cn-hangzhou", known), "InvalidSecurityToken.Expired", 400},
		{"unknown token", clientOptions{ak: stsAK, secret: stsSecret, token: "CAISforged"}, authzRequest("cn-hangzhou", known), "InvalidSecurityToken.Malformed", 400},
		{"token of another key", clientOptions{ak: stsAK, secret: stsSecret, token: otherStsToken}, authzRequest("cn-hangzhou", known), "InvalidSecurityToken.MismatchWithAccessKey", 400},
		{"token with a long-term key", clientOptions{ak: testAK, secret: testSecret, token: stsToken}, authzRequest("cn-hangzhou", known), "InvalidSecurityToken.MismatchWithAccessKey", 400},
		{"sts key without token", clientOptions{ak: stsAK, secret: stsSecret}, authzRequest("cn-hangzhou", known), "MissingSecurityToken", 400},
		{"sts key without token rpc", clientOptions{ak: stsAK, secret: stsSecret, rpc: true}, authzRequest("cn-hangzhou", known), "MissingSecurityToken", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.ResetStats()
			c := newClient(t, s, tc.o)
			_, err := c.DescribeVpnCrossAccountAuthorizations(tc.req)
			se := wantSDKError(t, err, tc.code, tc.status)
			var body map[string]any
			if err := json.Unmarshal([]byte(dara.StringValue(se.Data)), &body); err != nil {
				t.Fatalf("error data %q: %v", dara.StringValue(se.Data), err)
			}
			id, _ := body["RequestId"].(string)
			if !requestIDPattern.MatchString(id) || body["HostId"] != "vpc.aliyuncs.com" || body["Message"] == "" ||
				body["Recommend"] != "https://api.aliyun.com/troubleshoot?q="+tc.code+"&product=Vpc&requestId="+id {
				t.Errorf("error body = %v", body)
			}
			if strings.Contains(dara.StringValue(se.Data), testSecret) || strings.Contains(dara.StringValue(se.Data), stsSecret) {
				t.Errorf("error body carries a secret: %s", dara.StringValue(se.Data))
			}
			if tc.code == "Forbidden.RAM" {
				d := se.AccessDeniedDetail
				if d["AuthAction"] != "vpc:DescribeVpnCrossAccountAuthorizations" || d["NoPermissionType"] != "ImplicitDeny" || d["AuthPrincipalOwnerId"] != "1250123456123456" {
					t.Errorf("AccessDeniedDetail = %v", d)
				}
			}
			st := s.Stats().Action("DescribeVpnCrossAccountAuthorizations")
			if st.Calls != 1 || st.Errors != 1 || st.ByCode[tc.code] != 1 {
				t.Errorf("stats = %+v, want one %s", st, tc.code)
			}
		})
	}
}

func TestSignatureDoesNotMatchHidesSecret(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	c := newClient(t, s, clientOptions{ak: testAK, secret: "wrong" + testSecret})
	_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", "vco-p0w2jpkhi2eeop6q6****"))
	se := wantSDKError(t, err, "SignatureDoesNotMatch", 400)
	msg := dara.StringValue(se.Message)
	if !strings.Contains(msg, "server string to sign is:ACS3-HMAC-SHA256") {
		t.Errorf("message %q does not show the string to sign", msg)
	}
	if strings.Contains(msg, testSecret) {
		t.Errorf("message %q shows the secret", msg)
	}
}

func TestSignatureTampering(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	flipLast := func(v string) string {
		b := []byte(v)
		b[len(b)-1] ^= 1
		return string(b)
	}
	for _, tc := range []struct {
		name   string
		rpc    bool
		mutate func(*http.Request)
	}{
		{"v3 query value", false, func(r *http.Request) {
			q := r.URL.Query()
			q.Set("VpnConnectionId", flipLast(q.Get("VpnConnectionId")))
			r.URL.RawQuery = q.Encode()
		}},
		{"v3 added query parameter", false, func(r *http.Request) {
			r.URL.RawQuery += "&PageSize=50"
		}},
		{"v3 date header", false, func(r *http.Request) {
			//lint:ignore SA1008 the SDK writes its header keys in lower case, uncanonicalised
			d := r.Header["x-acs-date"][0]
			r.Header["x-acs-date"] = []string{d[:len(d)-2] + map[bool]string{true: "0Z", false: "1Z"}[d[len(d)-2] != '0']}
		}},
		{"v3 nonce header", false, func(r *http.Request) {
			r.Header["x-acs-signature-nonce"] = []string{flipLast(r.Header["x-acs-signature-nonce"][0])}
		}},
		{"v3 signature", false, func(r *http.Request) {
			r.Header["Authorization"] = []string{flipLast(r.Header["Authorization"][0])}
		}},
		{"rpc query value", true, func(r *http.Request) {
			q := r.URL.Query()
			q.Set("RegionId", flipLast(q.Get("RegionId")))
			r.URL.RawQuery = q.Encode()
		}},
		{"rpc nonce", true, func(r *http.Request) {
			q := r.URL.Query()
			q.Set("SignatureNonce", flipLast(q.Get("SignatureNonce")))
			r.URL.RawQuery = q.Encode()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, s, clientOptions{rpc: tc.rpc, httpClient: newHookClient(tc.mutate)})
			_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", "vco-p0w2jpkhi2eeop6q6****"))
			wantSDKError(t, err, "SignatureDoesNotMatch", 400)
		})
	}
	// The same hooks without a change pass, so the failures above come from the change.
	for _, rpc := range []bool{false, true} {
		c := newClient(t, s, clientOptions{rpc: rpc, httpClient: newHookClient(func(*http.Request) {})})
		if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", "vco-p0w2jpkhi2eeop6q6****")); err != nil {
			t.Errorf("rpc=%v unchanged request: %v", rpc, err)
		}
	}
}

func TestSpecialCharactersInQuery(t *testing.T) {
	// Values with space, '*' and '~' are signed in their canonical escaping.
	id := "vco-a b*c~d"
	s := startServer(t, Options{})
	s.PutConnection("cn-hangzhou", Connection{VpnConnectionId: id, Authorizations: []Authorization{{BindUid: 1, BindProduct: "CEN", BindInstance: "cen-x"}}})
	for _, rpc := range []bool{false, true} {
		c := newClient(t, s, clientOptions{rpc: rpc})
		resp, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", id))
		if err != nil {
			t.Fatalf("rpc=%v: %v", rpc, err)
		}
		if got := dara.StringValue(resp.Body.CrossAccountAuthorizations[0].VpnConnectionId); got != id {
			t.Errorf("VpnConnectionId = %q", got)
		}
	}
}

func TestTimestampAndNonce(t *testing.T) {
	inv := loadTestInventory(t)
	for _, tc := range []struct {
		name   string
		offset time.Duration
		code   string
	}{
		{"server 20 min ahead", 20 * time.Minute, "InvalidTimeStamp.Expired"},
		{"server 20 min behind", -20 * time.Minute, "InvalidTimeStamp.Expired"},
		{"server 10 min ahead", 10 * time.Minute, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Options{Inventory: inv, Now: func() time.Time { return time.Now().Add(tc.offset) }})
			for _, rpc := range []bool{false, true} {
				c := newClient(t, s, clientOptions{rpc: rpc})
				_, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", "vco-p0w2jpkhi2eeop6q6****"))
				if tc.code == "" {
					if err != nil {
						t.Errorf("rpc=%v: %v", rpc, err)
					}
					continue
				}
				wantSDKError(t, err, tc.code, 400)
			}
		})
	}

	t.Run("replayed request", func(t *testing.T) {
		s := startServer(t, Options{Inventory: inv})
		for _, rpc := range []bool{false, true} {
			hook := newHookClient(nil)
			c := newClient(t, s, clientOptions{rpc: rpc, httpClient: hook})
			if _, err := c.DescribeVpnCrossAccountAuthorizations(authzRequest("cn-hangzhou", "vco-p0w2jpkhi2eeop6q6****")); err != nil {
				t.Fatal(err)
			}
			first, _ := hook.last()
			replay, err := http.NewRequest(first.Method, first.URL.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			replay.Header = first.Header.Clone()
			status, body, _ := do(t, replay)
			if status != 400 || !strings.Contains(string(body), `"Code":"SignatureNonceUsed"`) {
				t.Errorf("rpc=%v replay: %d %s", rpc, status, body)
			}
		}
	})
}

func TestAccessKeyHeaderMustMatchCredential(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	q := url.Values{"RegionId": {"cn-hangzhou"}, "VpnConnectionId": {"vco-p0w2jpkhi2eeop6q6****"}}
	base := map[string]string{"x-acs-action": "DescribeVpnCrossAccountAuthorizations", "x-acs-security-token": stsToken}

	good := map[string]string{"x-acs-accesskey-id": stsAK}
	bad := map[string]string{"x-acs-accesskey-id": otherStsAK}
	for _, tc := range []struct {
		extra  map[string]string
		status int
		code   string
	}{
		{good, 200, ""},
		{bad, 400, "InvalidSecurityToken.MismatchWithAccessKey"},
		{map[string]string{}, 400, "InvalidSecurityToken.MismatchWithAccessKey"},
	} {
		h := map[string]string{}
		for k, v := range base {
			h[k] = v
		}
		for k, v := range tc.extra {
			h[k] = v
		}
		status, body, _ := do(t, signedV3(t, s, stsAK, stsSecret, q, h, nil))
		if status != tc.status || (tc.code != "" && !strings.Contains(string(body), `"Code":"`+tc.code+`"`)) {
			t.Errorf("x-acs-accesskey-id %v: %d %s, want %d %s", tc.extra, status, body, tc.status, tc.code)
		}
	}
}

func TestRequestEdges(t *testing.T) {
	s := startServer(t, Options{Inventory: loadTestInventory(t)})
	action := map[string]string{"x-acs-action": "DescribeVpnCrossAccountAuthorizations"}

	t.Run("parameters in a form body", func(t *testing.T) {
		body := []byte(url.Values{"RegionId": {"cn-hangzhou"}, "VpnConnectionId": {"vco-p0w2jpkhi2eeop6q6****"}}.Encode())
		h := map[string]string{"x-acs-action": action["x-acs-action"], "content-type": "application/x-www-form-urlencoded"}
		status, resp, header := do(t, signedV3(t, s, testAK, testSecret, url.Values{}, h, body))
		if status != 200 || !strings.Contains(string(resp), "cen-vv8h0t3klfpaae****") {
			t.Errorf("%d %s", status, resp)
		}
		for name := range header {
			if strings.HasPrefix(strings.ToLower(name), "x-ratelimit") {
				t.Errorf("answer carries %s", name)
			}
		}
	})
	t.Run("body that does not match its hash", func(t *testing.T) {
		req := signedV3(t, s, testAK, testSecret, url.Values{"RegionId": {"cn-hangzhou"}, "VpnConnectionId": {"vco-p0w2jpkhi2eeop6q6****"}}, action, nil)
		req.Body = readCloser("RegionId=cn-hangzhou")
		req.ContentLength = int64(len("RegionId=cn-hangzhou"))
		status, resp, _ := do(t, req)
		if status != 400 || !strings.Contains(string(resp), `"SignatureDoesNotMatch"`) {
			t.Errorf("%d %s", status, resp)
		}
	})
	t.Run("unsigned acs header", func(t *testing.T) {
		req := signedV3(t, s, testAK, testSecret, url.Values{"RegionId": {"cn-hangzhou"}, "VpnConnectionId": {"vco-p0w2jpkhi2eeop6q6****"}}, action, nil)
		req.Header.Set("x-acs-extra", "1")
		status, resp, _ := do(t, req)
		if status != 400 || !strings.Contains(string(resp), `"IncompleteSignature"`) {
			t.Errorf("%d %s", status, resp)
		}
	})
	t.Run("no signature", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/?Action=DescribeRegions&Version=2016-04-28", nil)
		status, resp, _ := do(t, req)
		if status != 400 || !strings.Contains(string(resp), `"IncompleteSignature"`) {
			t.Errorf("%d %s", status, resp)
		}
	})
	t.Run("wrong version", func(t *testing.T) {
		req := signedV3(t, s, testAK, testSecret, url.Values{}, map[string]string{"x-acs-action": "DescribeRegions", "x-acs-version": "2014-05-26"}, nil)
		status, resp, _ := do(t, req)
		if status != 400 || !strings.Contains(string(resp), `"InvalidVersion"`) {
			t.Errorf("%d %s", status, resp)
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		c := newClient(t, s, clientOptions{})
		params := &openapiutil.Params{
			Action: dara.String("DescribeVpnGatewayz"), Version: dara.String(APIVersion), Protocol: dara.String("HTTPS"),
			Pathname: dara.String("/"), Method: dara.String("POST"), AuthType: dara.String("AK"), Style: dara.String("RPC"),
			ReqBodyType: dara.String("formData"), BodyType: dara.String("json"),
		}
		_, err := c.CallApi(params, &openapiutil.OpenApiRequest{Query: map[string]*string{"RegionId": dara.String("cn-hangzhou")}}, &dara.RuntimeOptions{})
		wantSDKError(t, err, "InvalidAction.NotFound", 404)
	})
}

type stringReadCloser struct{ *strings.Reader }

func (stringReadCloser) Close() error { return nil }

func readCloser(s string) stringReadCloser { return stringReadCloser{strings.NewReader(s)} }
