package slsemu

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"vpnauthz/internal/emulator/cred"
)

const (
	maxClockSkew  = 15 * time.Minute
	v4Algorithm   = "SLS4-HMAC-SHA256"
	v4Terminator  = "aliyun_v4_request"
	v4DateTime    = "20060102T150405Z"
	securityToken = "x-acs-security-token"
)

// authenticate verifies the request signature (v1 "LOG ak:sig" or v4
// "SLS4-HMAC-SHA256"), then the key's STS token, in the order the real
// service does: a request signed with a wrong secret is refused as such even
// when its token is also wrong.
func (s *Server) authenticate(r *http.Request, body []byte) *apiError {
	auth := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(auth, "LOG "):
		return s.verifyV1(r, body, strings.TrimPrefix(auth, "LOG "))
	case strings.HasPrefix(auth, v4Algorithm+" "):
		return s.verifyV4(r, body, strings.TrimPrefix(auth, v4Algorithm+" "))
	case auth == "":
		return errorf(http.StatusUnauthorized, "Unauthorized", "The Authorization header is missing.")
	}
	return errorf(http.StatusUnauthorized, "Unauthorized", "The Authorization header %q is not understood.", auth)
}

func (s *Server) checkClock(t time.Time) *apiError {
	skew := s.now().Sub(t)
	if skew > maxClockSkew || skew < -maxClockSkew {
		return errorf(http.StatusBadRequest, "RequestTimeTooSkewed", "Request time exceeds server time more than 15 minutes.")
	}
	return nil
}

// lookupKey finds the secret of a key; the token is judged after the signature.
func (s *Server) lookupKey(accessKeyID, token string) (string, cred.Problem, *apiError) {
	secret, problem := s.creds.Check(accessKeyID, token)
	if problem == cred.UnknownKey {
		return "", problem, errorf(http.StatusUnauthorized, "Unauthorized", "AccessKeyId not found: %s", accessKeyID)
	}
	return secret, problem, nil
}

func tokenError(p cred.Problem) *apiError {
	switch p {
	case cred.OK:
		return nil
	case cred.TokenExpired:
		return errorf(http.StatusUnauthorized, "Unauthorized", "The security token you provided has expired.")
	}
	return errorf(http.StatusUnauthorized, "Unauthorized", "The security token you provided is invalid.")
}

func (s *Server) verifyV1(r *http.Request, body []byte, credential string) *apiError {
	switch m := r.Header.Get("x-log-signaturemethod"); {
	case m == "":
		return errorf(http.StatusBadRequest, "MissingSignatureMethod", "x-log-signaturemethod does not exist in http header.")
	case m != "hmac-sha1":
		return errorf(http.StatusBadRequest, "InvalidSignatureMethod", "signature method %s is unsupported.", m)
	}
	date := r.Header.Get("Date")
	if date == "" {
		return errorf(http.StatusBadRequest, "MissingDate", "Date does not exist in http header.")
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return errorf(http.StatusBadRequest, "InvalidDateFormat", "Date %s must follow RFC822.", date)
	}
	if e := s.checkClock(t); e != nil {
		return e
	}
	accessKeyID, signature, ok := strings.Cut(credential, ":")
	if !ok || accessKeyID == "" {
		return errorf(http.StatusUnauthorized, "Unauthorized", "The Authorization header %q is not understood.", "LOG "+credential)
	}
	secret, problem, e := s.lookupKey(accessKeyID, r.Header.Get(securityToken))
	if e != nil {
		return e
	}

	// The body is covered by the signature only through Content-MD5, so the
	// header must describe the bytes that arrived.
	contentMD5 := r.Header.Get("Content-MD5")
	switch {
	case len(body) > 0 && contentMD5 == "":
		return errorf(http.StatusBadRequest, "MissingContentMD5", "Content-MD5 does not exist in http header when body is not empty.")
	case contentMD5 != "" && !strings.EqualFold(contentMD5, fmt.Sprintf("%X", md5.Sum(body))):
		return errorf(http.StatusUnauthorized, "SignatureNotMatch", "Content-MD5 %s does not match the body.", contentMD5)
	}

	signString := r.Method + "\n" +
		contentMD5 + "\n" +
		r.Header.Get("Content-Type") + "\n" +
		date + "\n" +
		canonicalLogHeaders(r.Header) + "\n" +
		canonicalResourceV1(r.URL)
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(signString))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errorf(http.StatusUnauthorized, "SignatureNotMatch", "Signature %s is not matched.", signature)
	}
	return tokenError(problem)
}

// canonicalLogHeaders: every x-log-* and x-acs-* header, lower-cased name,
// trimmed value, sorted, "name:value" joined by newlines.
func canonicalLogHeaders(h http.Header) string {
	var lines []string
	for name, values := range h {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-log-") || strings.HasPrefix(l, "x-acs-") {
			lines = append(lines, l+":"+strings.TrimSpace(strings.Join(values, ",")))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// canonicalResourceV1: the escaped path, then "?" and the sorted query with
// decoded values, as the SDK signs it.
func canonicalResourceV1(u *url.URL) string {
	res := u.EscapedPath()
	if u.RawQuery == "" {
		return res
	}
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(res)
	b.WriteString("?")
	for i, k := range keys {
		if i > 0 {
			b.WriteString("&")
		}
		for _, v := range q[k] {
			b.WriteString(k + "=" + v)
		}
	}
	return b.String()
}

func (s *Server) verifyV4(r *http.Request, body []byte, params string) *apiError {
	var credential, signature string
	for part := range strings.SplitSeq(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "Signature":
			signature = v
		}
	}
	scopeParts := strings.Split(credential, "/")
	if len(scopeParts) != 5 || scopeParts[3] != "sls" || scopeParts[4] != v4Terminator || signature == "" {
		return errorf(http.StatusUnauthorized, "Unauthorized", "The Authorization header %q is not understood.", v4Algorithm+" "+params)
	}
	accessKeyID, day, region := scopeParts[0], scopeParts[1], scopeParts[2]
	dateTime := r.Header.Get("x-log-date")
	if dateTime == "" {
		return errorf(http.StatusBadRequest, "MissingDate", "x-log-date does not exist in http header.")
	}
	t, err := time.Parse(v4DateTime, dateTime)
	if err != nil || !strings.HasPrefix(dateTime, day) {
		return errorf(http.StatusBadRequest, "InvalidDateFormat", "x-log-date %s is invalid.", dateTime)
	}
	if e := s.checkClock(t); e != nil {
		return e
	}
	secret, problem, e := s.lookupKey(accessKeyID, r.Header.Get(securityToken))
	if e != nil {
		return e
	}
	contentSHA := r.Header.Get("x-log-content-sha256")
	if sum := sha256.Sum256(body); contentSHA != hex.EncodeToString(sum[:]) {
		return errorf(http.StatusUnauthorized, "SignatureNotMatch", "x-log-content-sha256 %s does not match the body.", contentSHA)
	}

	headers, signedNames := canonicalHeadersV4(r)
	canonicalRequest := r.Method + "\n" +
		r.URL.EscapedPath() + "\n" +
		canonicalQueryV4(r.URL) + "\n" +
		headers + "\n" +
		signedNames + "\n" +
		contentSHA
	scope := day + "/" + region + "/sls/" + v4Terminator
	reqHash := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := v4Algorithm + "\n" + dateTime + "\n" + scope + "\n" + hex.EncodeToString(reqHash[:])
	key := []byte("aliyun_v4" + secret)
	for _, part := range []string{day, region, "sls", v4Terminator} {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return errorf(http.StatusUnauthorized, "SignatureNotMatch", "Signature %s is not matched.", signature)
	}
	return tokenError(problem)
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// canonicalHeadersV4 derives the signed set from the request itself, as the
// Authorization header does not list it: host, content-type, x-acs-* and
// x-log-* except x-log-meta-*.
func canonicalHeadersV4(r *http.Request) (canonical, signed string) {
	values := map[string]string{"host": r.Host}
	for name, v := range r.Header {
		l := strings.ToLower(name)
		if l == "content-type" || strings.HasPrefix(l, "x-acs-") ||
			(strings.HasPrefix(l, "x-log-") && !strings.HasPrefix(l, "x-log-meta-")) {
			values[l] = v[0]
		}
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + ":" + values[n] + "\n")
	}
	return b.String(), strings.Join(names, ";")
}

func canonicalQueryV4(u *url.URL) string {
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := ""
		if len(q[k]) > 0 {
			v = strings.ReplaceAll(url.QueryEscape(q[k][0]), "+", "%20")
		}
		if v == "" {
			parts = append(parts, k)
		} else {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, "&")
}
