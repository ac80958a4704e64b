package otsemu

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"
	"time"

	"vpnauthz/internal/emulator/cred"
)

const (
	maxClockSkew = 15 * time.Minute
	apiVersion   = "2015-12-31"
)

// authenticate checks the x-ots-* headers the way the service does: required
// headers, date, body digest, key, signature, then the key's STS token and the
// instance. The signature is HMAC-SHA1 of
// "/{Operation}\nPOST\n\n" followed by every x-ots-* header but the signature,
// lower-cased, sorted, as "name:value\n".
func (s *Server) authenticate(r *http.Request, body []byte) *apiError {
	for _, h := range []string{"x-ots-date", "x-ots-apiversion", "x-ots-accesskeyid", "x-ots-contentmd5", "x-ots-instancename", "x-ots-signature"} {
		if r.Header.Get(h) == "" {
			return errorf(CodeParameterInvalid, "Missing header: '%s'.", h)
		}
	}
	if v := r.Header.Get("x-ots-apiversion"); v != apiVersion {
		return errorf(CodeParameterInvalid, "Unsupported API version: %s.", v)
	}
	date := r.Header.Get("x-ots-date")
	t, ok := parseOTSDate(date)
	if !ok {
		return errorf(CodeParameterInvalid, "Invalid date format: %s.", date)
	}
	if skew := time.Since(t); skew > maxClockSkew || skew < -maxClockSkew {
		return errorf(CodeAuthFailed, "Mismatch between system time and x-ots-date: %s.", date)
	}
	sum := md5.Sum(body)
	if r.Header.Get("x-ots-contentmd5") != base64.StdEncoding.EncodeToString(sum[:]) {
		return errorf(CodeAuthFailed, "Mismatch between MD5 value of request body and x-ots-contentmd5 in header.")
	}
	secret, problem := s.creds.Check(r.Header.Get("x-ots-accesskeyid"), r.Header.Get("x-ots-ststoken"))
	if problem == cred.UnknownKey {
		return errorf(CodeAuthFailed, "The AccessKeyID does not exist.")
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(stringToSign(r)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(r.Header.Get("x-ots-signature"))) {
		return errorf(CodeAuthFailed, "Signature mismatch.")
	}
	switch problem {
	case cred.OK:
	case cred.TokenExpired:
		return errorf(CodeAuthFailed, "The security token you provided has expired.")
	default:
		return errorf(CodeAuthFailed, "The security token you provided is invalid.")
	}
	if r.Header.Get("x-ots-instancename") != s.opts.Instance {
		return errorf(CodeAuthFailed, "The instance is not found.")
	}
	return nil
}

func stringToSign(r *http.Request) string {
	values := map[string]string{}
	var names []string
	for name, v := range r.Header {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-ots-") && l != "x-ots-signature" && len(v) > 0 && v[0] != "" {
			values[l] = strings.TrimSpace(v[0])
			names = append(names, l)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(r.URL.Path + "\n" + r.Method + "\n\n")
	for _, n := range names {
		b.WriteString(n + ":" + values[n] + "\n")
	}
	return b.String()
}

// parseOTSDate reads x-ots-date: ISO 8601 UTC to the second, then optional
// digits of a fraction, then "Z". The SDK's fraction is not a real fraction
// (its layout prints month, day and hour there), so only its shape is checked.
func parseOTSDate(v string) (time.Time, bool) {
	const layout = "2006-01-02T15:04:05"
	if len(v) < len(layout)+1 || !strings.HasSuffix(v, "Z") {
		return time.Time{}, false
	}
	t, err := time.Parse(layout, v[:len(layout)])
	if err != nil {
		return time.Time{}, false
	}
	rest := v[len(layout) : len(v)-1]
	if rest != "" {
		if rest[0] != '.' || len(rest) == 1 || strings.Trim(rest[1:], "0123456789") != "" {
			return time.Time{}, false
		}
	}
	return t, true
}
