// Package gateway is the part of the emulated OpenAPI gateway that every
// emulated product shares: it checks the signatures the Alibaba Cloud SDKs put on
// OpenAPI calls, for the emulated services that are not the VPC API: the V3
// signature (ACS3-HMAC-SHA256, headers) that darabonba-openapi sends by
// default for RPC and ROA calls, and the legacy RPC signature (HMAC-SHA1,
// query parameters) that clients which set SignatureAlgorithm "v2" send —
// the STS client does. Then the token, the time and the nonce, in the order
// the real gateways check them: nothing is learnt without the secret.
package gateway

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"vpnauthz/internal/emulator/cred"
)

const (
	v3Algorithm  = "ACS3-HMAC-SHA256"
	timeFormat   = "2006-01-02T15:04:05Z"
	maxClockSkew = 15 * time.Minute
	maxNonces    = 1 << 17
)

// Error is a refusal, with the status, code and message of the real gateway.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// codes are the gateway's authentication errors, shared by the products.
var codes = map[string]Error{
	"InvalidAccessKeyId.NotFound":                {404, "", "Specified access key is not found."},
	"SignatureDoesNotMatch":                      {400, "", "Specified signature is not matched with our calculation."},
	"IncompleteSignature":                        {400, "", "The request signature does not conform to Aliyun standards."},
	"InvalidSecurityToken.Expired":               {400, "", "Specified SecurityToken is expired."},
	"InvalidSecurityToken.Malformed":             {400, "", "Specified SecurityToken is malformed."},
	"InvalidSecurityToken.MismatchWithAccessKey": {400, "", "Specified SecurityToken mismatch with the AccessKey."},
	"MissingSecurityToken":                       {400, "", "SecurityToken is mandatory for this action."},
	"InvalidTimeStamp.Expired":                   {400, "", "Specified time stamp or date value is expired."},
	"InvalidTimeStamp.Format":                    {400, "", "Specified time stamp or date value is not well formatted."},
	"SignatureNonceUsed":                         {400, "", "Specified signature nonce was used already."},
	"MissingSignatureNonce":                      {400, "", "SignatureNonce is mandatory for this action."},
	"MissingAccessKeyId":                         {400, "", "AccessKeyId is mandatory for this action."},
}

func newError(code string) *Error {
	e := codes[code]
	e.Code = code
	return &e
}

func (e *Error) with(format string, args ...any) *Error {
	out := *e
	out.Message = fmt.Sprintf(format, args...)
	return &out
}

// Verifier checks calls against a store of credentials.
type Verifier struct {
	Store *cred.Store
	Now   func() time.Time // default time.Now

	mu    sync.Mutex
	seen  map[string]time.Time
	order []nonceEntry
}

type nonceEntry struct {
	nonce string
	at    time.Time
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// IsV3 reports whether the call carries a V3 Authorization header.
func IsV3(r *http.Request) bool { return r.Header.Get("Authorization") != "" }

// Verify returns the credential that signed the call.
func (v *Verifier) Verify(r *http.Request, body []byte) (cred.Credential, *Error) {
	if h := r.Header.Get("Authorization"); h != "" {
		if !strings.HasPrefix(h, v3Algorithm+" ") {
			return cred.Credential{}, newError("IncompleteSignature")
		}
		return v.verifyV3(r, body, strings.TrimPrefix(h, v3Algorithm+" "))
	}
	if r.URL.Query().Has("Signature") {
		return v.verifyRPC(r)
	}
	return cred.Credential{}, newError("IncompleteSignature")
}

// ClaimedAccessKey is the access key id a call names, signed or not.
func ClaimedAccessKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		for _, part := range strings.Split(strings.TrimPrefix(h, v3Algorithm+" "), ",") {
			if k, val, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == "Credential" {
				return val
			}
		}
		return ""
	}
	return r.URL.Query().Get("AccessKeyId")
}

func (v *Verifier) verifyV3(r *http.Request, body []byte, authz string) (cred.Credential, *Error) {
	fields := map[string]string{}
	for _, part := range strings.Split(authz, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return cred.Credential{}, newError("IncompleteSignature")
		}
		fields[k] = val
	}
	ak, signedList, signature := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if ak == "" || signedList == "" || signature == "" {
		return cred.Credential{}, newError("IncompleteSignature")
	}
	token := r.Header.Get("x-acs-security-token")
	secret, problem := v.Store.Check(ak, token)
	if problem == cred.UnknownKey {
		return cred.Credential{}, newError("InvalidAccessKeyId.NotFound")
	}
	signed := strings.Split(signedList, ";")
	signedSet := map[string]bool{}
	for _, name := range signed {
		signedSet[name] = true
	}
	if !signedSet["host"] {
		return cred.Credential{}, newError("IncompleteSignature").with("The request signature does not conform to Aliyun standards: host is not signed.")
	}
	for name := range r.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-acs-") && !signedSet[lower] {
			return cred.Credential{}, newError("IncompleteSignature").with("The request signature does not conform to Aliyun standards: header %s is not signed.", lower)
		}
	}
	payloadHash := r.Header.Get("x-acs-content-sha256")
	sum := sha256.Sum256(body)
	if payloadHash != hex.EncodeToString(sum[:]) {
		return cred.Credential{}, newError("SignatureDoesNotMatch").with("Specified signature is not matched with our calculation: x-acs-content-sha256 is not the SHA-256 of the body.")
	}
	var headers strings.Builder
	for _, name := range signed {
		var value string
		if name == "host" {
			value = r.Host
		} else {
			vals := r.Header.Values(name)
			trimmed := make([]string, len(vals))
			for i, s := range vals {
				trimmed[i] = strings.TrimSpace(s)
			}
			sort.Strings(trimmed)
			value = strings.Join(trimmed, ",")
		}
		headers.WriteString(name + ":" + value + "\n")
	}
	canonicalRequest := r.Method + "\n" +
		signingEscape(r.URL.EscapedPath()) + "\n" +
		canonicalQuery(r.URL.Query()) + "\n" +
		headers.String() + "\n" +
		signedList + "\n" +
		payloadHash
	crHash := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := v3Algorithm + "\n" + hex.EncodeToString(crHash[:])
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(signature)) != 1 {
		return cred.Credential{}, mismatch(stringToSign)
	}
	if e := tokenError(problem); e != nil {
		return cred.Credential{}, e
	}
	if token != "" && r.Header.Get("x-acs-accesskey-id") != ak {
		return cred.Credential{}, newError("InvalidSecurityToken.MismatchWithAccessKey")
	}
	if e := v.checkTime(r.Header.Get("x-acs-date")); e != nil {
		return cred.Credential{}, e
	}
	if e := v.useNonce(r.Header.Get("x-acs-signature-nonce")); e != nil {
		return cred.Credential{}, e
	}
	c, _ := v.Store.Lookup(ak)
	return c, nil
}

func (v *Verifier) verifyRPC(r *http.Request) (cred.Credential, *Error) {
	query := r.URL.Query()
	ak := query.Get("AccessKeyId")
	if ak == "" {
		return cred.Credential{}, newError("MissingAccessKeyId")
	}
	token := query.Get("SecurityToken")
	secret, problem := v.Store.Check(ak, token)
	if problem == cred.UnknownKey {
		return cred.Credential{}, newError("InvalidAccessKeyId.NotFound")
	}
	if query.Get("SignatureMethod") != "HMAC-SHA1" || query.Get("SignatureVersion") != "1.0" {
		return cred.Credential{}, newError("IncompleteSignature").with("The request signature does not conform to Aliyun standards: SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.")
	}
	params := url.Values{}
	for k, vs := range query {
		if k != "Signature" {
			params[k] = vs
		}
	}
	stringToSign := r.Method + "&%2F&" + url.QueryEscape(signingEscape(params.Encode()))
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(query.Get("Signature"))) != 1 {
		return cred.Credential{}, mismatch(stringToSign)
	}
	if e := tokenError(problem); e != nil {
		return cred.Credential{}, e
	}
	if e := v.checkTime(query.Get("Timestamp")); e != nil {
		return cred.Credential{}, e
	}
	if e := v.useNonce(query.Get("SignatureNonce")); e != nil {
		return cred.Credential{}, e
	}
	c, _ := v.Store.Lookup(ak)
	return c, nil
}

// mismatch tells the server's string to sign, like the real gateway; it
// holds no secret.
func mismatch(stringToSign string) *Error {
	return newError("SignatureDoesNotMatch").with("Specified signature is not matched with our calculation. server string to sign is:%s", stringToSign)
}

func tokenError(p cred.Problem) *Error {
	switch p {
	case cred.OK:
		return nil
	case cred.MissingToken:
		return newError("MissingSecurityToken")
	case cred.MalformedToken:
		return newError("InvalidSecurityToken.Malformed")
	case cred.TokenMismatch, cred.UnexpectedToken:
		return newError("InvalidSecurityToken.MismatchWithAccessKey")
	case cred.TokenExpired:
		return newError("InvalidSecurityToken.Expired")
	default:
		return newError("InvalidAccessKeyId.NotFound")
	}
}

func (v *Verifier) checkTime(value string) *Error {
	t, err := time.Parse(timeFormat, value)
	if err != nil {
		return newError("InvalidTimeStamp.Format")
	}
	skew := v.now().Sub(t)
	if skew > maxClockSkew || skew < -maxClockSkew {
		return newError("InvalidTimeStamp.Expired")
	}
	return nil
}

// useNonce remembers the nonces of the last maxClockSkew (older calls are
// refused by their time anyway), bounded by count as well.
func (v *Verifier) useNonce(nonce string) *Error {
	if nonce == "" {
		return newError("MissingSignatureNonce")
	}
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	drop := 0
	for drop < len(v.order) && (len(v.order)-drop >= maxNonces || now.Sub(v.order[drop].at) > maxClockSkew) {
		delete(v.seen, v.order[drop].nonce)
		drop++
	}
	v.order = v.order[drop:]
	if _, used := v.seen[nonce]; used {
		return newError("SignatureNonceUsed")
	}
	v.seen[nonce] = now
	v.order = append(v.order, nonceEntry{nonce, now})
	return nil
}

// canonicalQuery is the sorted query with values escaped the way the SDK
// signs them (keys are not escaped; the first value counts).
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + url.QueryEscape(q.Get(k))
	}
	return signingEscape(strings.Join(parts, "&"))
}

var signingReplacer = strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~")

func signingEscape(s string) string { return signingReplacer.Replace(s) }
