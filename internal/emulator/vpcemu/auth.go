package vpcemu

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
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
)

// caller is who signed a request.
type caller struct {
	accessKey string
	account   string // the key's account; "" for the server's own
}

// authenticate verifies the V3 (Authorization header) or the legacy RPC
// (Signature parameter) signature, then the token, the time and the nonce.
// The signature comes first so that nothing is learnt without the secret.
func (s *Server) authenticate(r *http.Request, body []byte) (caller, *apiError) {
	if h := r.Header.Get("Authorization"); h != "" {
		if !strings.HasPrefix(h, v3Algorithm+" ") {
			return caller{}, newAPIError("IncompleteSignature")
		}
		return s.verifyV3(r, body, strings.TrimPrefix(h, v3Algorithm+" "))
	}
	if r.URL.Query().Has("Signature") {
		return s.verifyRPC(r)
	}
	return caller{}, newAPIError("IncompleteSignature")
}

func (s *Server) verifyV3(r *http.Request, body []byte, authz string) (caller, *apiError) {
	fields := map[string]string{}
	for _, part := range strings.Split(authz, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return caller{}, newAPIError("IncompleteSignature")
		}
		fields[k] = v
	}
	ak, signedList, signature := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if ak == "" || signedList == "" || signature == "" {
		return caller{}, newAPIError("IncompleteSignature")
	}
	token := r.Header.Get("x-acs-security-token")
	secret, problem := s.creds.Check(ak, token)
	if problem == cred.UnknownKey {
		return caller{}, newAPIError("InvalidAccessKeyId.NotFound")
	}

	signed := strings.Split(signedList, ";")
	signedSet := map[string]bool{}
	for _, name := range signed {
		signedSet[name] = true
	}
	if !signedSet["host"] {
		return caller{}, newAPIError("IncompleteSignature").withMessage("The request signature does not conform to Aliyun standards: host is not signed.")
	}
	for name := range r.Header {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-acs-") && !signedSet[lower] {
			return caller{}, newAPIError("IncompleteSignature").withMessage("The request signature does not conform to Aliyun standards: header %s is not signed.", lower)
		}
	}

	payloadHash := r.Header.Get("x-acs-content-sha256")
	sum := sha256.Sum256(body)
	if payloadHash != hex.EncodeToString(sum[:]) {
		return caller{}, newAPIError("SignatureDoesNotMatch").withMessage("Specified signature is not matched with our calculation: x-acs-content-sha256 is not the SHA-256 of the body.")
	}

	var headers strings.Builder
	for _, name := range signed {
		var value string
		if name == "host" {
			value = r.Host
		} else {
			vals := r.Header.Values(name)
			trimmed := make([]string, len(vals))
			for i, v := range vals {
				trimmed[i] = strings.TrimSpace(v)
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
	want := hex.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return caller{}, signatureMismatch(stringToSign)
	}

	if e := tokenError(problem); e != nil {
		return caller{}, e
	}
	if token != "" && r.Header.Get("x-acs-accesskey-id") != ak {
		return caller{}, newAPIError("InvalidSecurityToken.MismatchWithAccessKey")
	}
	if e := s.checkTime(r.Header.Get("x-acs-date")); e != nil {
		return caller{}, e
	}
	if e := s.nonces.use(r.Header.Get("x-acs-signature-nonce"), s.now()); e != nil {
		return caller{}, e
	}
	return caller{accessKey: ak}, nil
}

func (s *Server) verifyRPC(r *http.Request) (caller, *apiError) {
	query := r.URL.Query()
	ak := query.Get("AccessKeyId")
	if ak == "" {
		return caller{}, newAPIError("MissingAccessKeyId")
	}
	token := query.Get("SecurityToken")
	secret, problem := s.creds.Check(ak, token)
	if problem == cred.UnknownKey {
		return caller{}, newAPIError("InvalidAccessKeyId.NotFound")
	}
	if query.Get("SignatureMethod") != "HMAC-SHA1" || query.Get("SignatureVersion") != "1.0" {
		return caller{}, newAPIError("IncompleteSignature").withMessage("The request signature does not conform to Aliyun standards: SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0.")
	}
	signature := query.Get("Signature")
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
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return caller{}, signatureMismatch(stringToSign)
	}
	if e := tokenError(problem); e != nil {
		return caller{}, e
	}
	if e := s.checkTime(query.Get("Timestamp")); e != nil {
		return caller{}, e
	}
	if e := s.nonces.use(query.Get("SignatureNonce"), s.now()); e != nil {
		return caller{}, e
	}
	return caller{accessKey: ak}, nil
}

// signatureMismatch tells the server's string to sign, like the real gateway;
// the string to sign holds no secret.
func signatureMismatch(stringToSign string) *apiError {
	return newAPIError("SignatureDoesNotMatch").withMessage("Specified signature is not matched with our calculation. server string to sign is:%s", stringToSign)
}

func tokenError(p cred.Problem) *apiError {
	switch p {
	case cred.OK:
		return nil
	case cred.MissingToken:
		return newAPIError("MissingSecurityToken")
	case cred.MalformedToken:
		return newAPIError("InvalidSecurityToken.Malformed")
	case cred.TokenMismatch, cred.UnexpectedToken:
		return newAPIError("InvalidSecurityToken.MismatchWithAccessKey")
	case cred.TokenExpired:
		return newAPIError("InvalidSecurityToken.Expired")
	default:
		return newAPIError("InvalidAccessKeyId.NotFound")
	}
}

func (s *Server) checkTime(value string) *apiError {
	t, err := time.Parse(timeFormat, value)
	if err != nil {
		return newAPIError("InvalidTimeStamp.Format")
	}
	skew := s.now().Sub(t)
	if skew > maxClockSkew || skew < -maxClockSkew {
		return newAPIError("InvalidTimeStamp.Expired")
	}
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

// nonceMemory remembers the nonces of the last maxClockSkew; older requests
// are refused by their time anyway. It is bounded by count as well.
type nonceMemory struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	order []nonceEntry
}

type nonceEntry struct {
	nonce string
	at    time.Time
}

const maxNonces = 1 << 17

func (m *nonceMemory) use(nonce string, now time.Time) *apiError {
	if nonce == "" {
		return newAPIError("MissingSignatureNonce")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	drop := 0
	for drop < len(m.order) && (len(m.order)-drop >= maxNonces || now.Sub(m.order[drop].at) > maxClockSkew) {
		delete(m.seen, m.order[drop].nonce)
		drop++
	}
	m.order = m.order[drop:]
	if _, used := m.seen[nonce]; used {
		return newAPIError("SignatureNonceUsed")
	}
	m.seen[nonce] = now
	m.order = append(m.order, nonceEntry{nonce, now})
	return nil
}
