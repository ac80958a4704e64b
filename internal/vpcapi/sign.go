package vpcapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
)

// signer makes the request that the SDK's generic client makes for an RPC
// action (darabonba-openapi v2.2.4, Client.CallApi → DoRequest: signature
// version v3, ACS3-HMAC-SHA256), from what the SDK's client resolved once
// (endpoint, protocol, user agent, credential), without the SDK's per-call
// glue: its runtime maps, a new http.Transport and a log record per call, a
// nonce from runtime.Stack. The signature is the SDK's own algorithm
// (openapiutil.GetAuthorization), computed without its maps and string
// concatenations; TestRequestIsTheSDKs compares the request with the one
// the SDK's CallApi sends and the Authorization header with
// openapiutil.GetAuthorization's.
//
// Read-only after newSigner: shared by every call of a Source.
type signer struct {
	scheme    string // "https" or "http"
	host      string // the SDK client's Endpoint
	userAgent string
	akID      string
	secret    string
	token     string // STS security token; "" for a long-term key
	provider  string // x-acs-credentials-provider, as the SDK sends it

	macs *sync.Pool // of HMAC-SHA256 keyed with secret
}

func (s *signer) init() *signer {
	secret := []byte(s.secret)
	s.macs = &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
	return s
}

const (
	signatureAlgorithm = "ACS3-HMAC-SHA256"
	apiVersion         = "2016-04-28"
	// hex(SHA-256("")): the SDK's x-acs-content-sha256 of a call without a
	// body.
	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// nonces: a random prefix per process and a counter, as unique as the SDK's
// MD5 of (process start, goroutine, time, sequence, random) without a
// runtime.Stack per call.
var (
	noncePrefix  [8]byte
	nonceCounter atomic.Uint64
)

func init() {
	if _, err := rand.Read(noncePrefix[:]); err != nil {
		panic("vpcapi: no randomness for request nonces: " + err.Error())
	}
	var b [8]byte
	rand.Read(b[:])
	nonceCounter.Store(binary.BigEndian.Uint64(b[:]))
}

// appendNonce appends 32 hex digits, the length of the SDK's nonces.
func appendNonce(dst []byte) []byte {
	var b [16]byte
	copy(b[:8], noncePrefix[:])
	binary.BigEndian.PutUint64(b[8:], nonceCounter.Add(1))
	return hex.AppendEncode(dst, b[:])
}

// rpcQuery is the query of a paged describe call: the SDK request models'
// PageNumber, PageSize, RegionId and VpnConnectionId ("" : not sent).
type rpcQuery struct {
	region     string
	pageNumber int
	pageSize   int
	connection string
}

// encode appends the query twice: as the URL carries it (url.Values.Encode,
// as dara.DoRequest builds it) and canonically, as openapiutil's
// getCanonicalQueryString signs it (keys sorted, spaces as %20). Keys are
// written in sorted order.
func (q *rpcQuery) encode(wire, canon []byte) ([]byte, []byte) {
	add := func(key, val string) {
		if len(wire) > 0 {
			wire = append(wire, '&')
			canon = append(canon, '&')
		}
		esc := url.QueryEscape(val)
		wire = append(wire, key...)
		wire = append(wire, '=')
		wire = append(wire, esc...)
		canon = append(canon, key...)
		canon = append(canon, '=')
		if strings.IndexByte(esc, '+') >= 0 {
			esc = strings.ReplaceAll(esc, "+", "%20")
		}
		canon = append(canon, esc...)
	}
	add("PageNumber", strconv.Itoa(q.pageNumber))
	add("PageSize", strconv.Itoa(q.pageSize))
	add("RegionId", q.region)
	if q.connection != "" {
		add("VpnConnectionId", q.connection)
	}
	return wire, canon
}

// scratch is a call's working memory for building and signing a request.
type scratch struct {
	wire, canon, creq, buf, sts []byte
}

var scratches = sync.Pool{New: func() any {
	return &scratch{wire: make([]byte, 0, 128), canon: make([]byte, 0, 128), creq: make([]byte, 0, 1024), buf: make([]byte, 0, 256), sts: make([]byte, 0, 96)}
}}

// header is one signed header, in the canonical order.
type header struct{ name, value string }

// newRequest builds and signs the request of action with q, as the SDK
// does, carrying ctx.
func (s *signer) newRequest(ctx context.Context, action string, q *rpcQuery) (*http.Request, error) {
	sc := scratches.Get().(*scratch)
	defer scratches.Put(sc)

	sc.wire, sc.canon = q.encode(sc.wire[:0], sc.canon[:0])
	rawQuery := string(sc.wire)

	// The date and the nonce in one string, cut in two.
	sc.buf = time.Now().UTC().AppendFormat(sc.buf[:0], "2006-01-02T15:04:05Z")
	nDate := len(sc.buf)
	sc.buf = appendNonce(sc.buf)
	dateNonce := string(sc.buf)
	date, nonce := dateNonce[:nDate], dateNonce[nDate:]

	// Every signed header, sorted by name, as getCanonicalHeaders sorts
	// them: host, x-acs-*; no content-type, there is no body.
	var signed [9]header
	n := 0
	add := func(name, value string) { signed[n] = header{name, value}; n++ }
	add("host", s.host)
	if s.token != "" {
		add("x-acs-accesskey-id", s.akID)
	}
	add("x-acs-action", action)
	add("x-acs-content-sha256", emptyPayloadHash)
	if s.provider != "" {
		add("x-acs-credentials-provider", s.provider)
	}
	add("x-acs-date", date)
	if s.token != "" {
		add("x-acs-security-token", s.token)
	}
	add("x-acs-signature-nonce", nonce)
	add("x-acs-version", apiVersion)

	// The canonical request: method, URI, query, headers, signed header
	// names, payload hash.
	cr := append(sc.creq[:0], "POST\n/\n"...)
	cr = append(cr, sc.canon...)
	cr = append(cr, '\n')
	for _, h := range signed[:n] {
		cr = append(cr, h.name...)
		cr = append(cr, ':')
		cr = append(cr, strings.TrimSpace(h.value)...)
		cr = append(cr, '\n')
	}
	cr = append(cr, '\n')
	namesStart := len(cr)
	for i, h := range signed[:n] {
		if i > 0 {
			cr = append(cr, ';')
		}
		cr = append(cr, h.name...)
	}
	names := cr[namesStart:]
	cr = append(cr, '\n')
	cr = append(cr, emptyPayloadHash...)
	sc.creq = cr

	// openapiutil.Hash and SignatureMethod for ACS3-HMAC-SHA256, without
	// their allocations: SHA-256 of the canonical request, then HMAC-SHA256
	// of the string to sign with the secret, from a keyed MAC kept per
	// signer.
	crHash := sha256.Sum256(cr)
	sts := append(sc.sts[:0], signatureAlgorithm+"\n"...)
	sts = hex.AppendEncode(sts, crHash[:])
	sc.sts = sts
	mac := s.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(sts)
	var sum [sha256.Size]byte
	sig := mac.Sum(sum[:0])
	s.macs.Put(mac)

	auth := make([]byte, 0, 64+len(s.akID)+len(names)+64)
	auth = append(auth, signatureAlgorithm+" Credential="...)
	auth = append(auth, s.akID...)
	auth = append(auth, ",SignedHeaders="...)
	auth = append(auth, names...)
	auth = append(auth, ",Signature="...)
	auth = hex.AppendEncode(auth, sig)

	u := &url.URL{Scheme: s.scheme, Host: s.host, Path: "/", RawQuery: rawQuery}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", nil)
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.Host = s.host
	// The SDK's header names, lower-case as it writes them; the values in
	// one array.
	vals := make([]string, 0, len(signed)+3)
	h := make(http.Header, len(signed)+3)
	set := func(name, value string) {
		vals = append(vals, value)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for _, sh := range signed[1:n] { // host is req.Host
		set(sh.name, sh.value)
	}
	set("User-Agent", s.userAgent)
	set("accept", "application/json")
	set("Authorization", string(auth))
	req.Header = h
	return req, nil
}

// errorAnswer turns an error answer (HTTP 400–599) into the error the SDK
// returns for it (doRequest_opResponse, then dara.TeaSDKError): a
// *tea.SDKError with the answer's code, status and message and the
// answer's fields as its data; an answer that is not JSON gives the
// decoder's error, as in the SDK.
func errorAnswer(status int, contentType string, body []byte) error {
	var fields map[string]any
	if contentType == "text/xml;charset=utf-8" {
		fields = dara.ToMap(dara.ParseXml(string(body), nil)["Error"])
	} else {
		obj, err := dara.ReadAsJSON(bytes.NewReader(body))
		if err != nil {
			return err
		}
		fields = dara.ToMap(obj)
	}
	if fields == nil {
		fields = map[string]any{}
	}
	requestID := dara.ToString(dara.Default(fields["RequestId"], fields["requestId"]))
	code := dara.ToString(dara.Default(fields["Code"], fields["code"]))
	msg := "code: " + strconv.Itoa(status) + ", " + dara.ToString(dara.Default(fields["Message"], fields["message"])) + " request id: " + requestID
	return tea.NewSDKError(map[string]any{
		"code":        code,
		"statusCode":  status,
		"message":     msg,
		"data":        fields,
		"description": dara.ToString(dara.Default(fields["Description"], fields["description"])),
	})
}
