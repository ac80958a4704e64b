// Package endpoint parses the endpoints of the cloud services vpnauthz calls
// (VPC_ENDPOINT, SLS_ENDPOINT and the other *_ENDPOINT variables) once, into
// one typed value that every client builder takes, with one set of rules:
// traffic to the cloud is HTTPS; plain HTTP is allowed only for a loopback
// host (an emulator); a bare loopback host:port means HTTP; an endpoint is
// never more than scheme, host and port.
package endpoint

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Endpoint is one service address.
type Endpoint struct {
	Scheme   string // "https", or "http" for a loopback host
	Host     string // lower-case DNS name or IP address, without brackets
	Port     int    // 0: the scheme's default
	Loopback bool   // 127.0.0.0/8, ::1 or localhost
}

// IsZero reports whether e is no endpoint: the SDK's own endpoint applies.
func (e Endpoint) IsZero() bool { return e.Host == "" }

// HostPort is host[:port], an IPv6 address in brackets: what SDKs that take
// the scheme separately want.
func (e Endpoint) HostPort() string {
	h := e.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if e.Port != 0 {
		h += ":" + strconv.Itoa(e.Port)
	}
	return h
}

// DialAddr is host:port with the scheme's default port filled in.
func (e Endpoint) DialAddr() string {
	p := e.Port
	if p == 0 {
		p = 443
		if e.Scheme == "http" {
			p = 80
		}
	}
	return Endpoint{Host: e.Host, Port: p}.HostPort()
}

// URL is scheme://host[:port], or "" for the zero Endpoint.
func (e Endpoint) URL() string {
	if e.IsZero() {
		return ""
	}
	return e.Scheme + "://" + e.HostPort()
}

func (e Endpoint) String() string { return e.URL() }

// Error is a value that is not an endpoint.
type Error struct {
	Value  string // the value or entry as written; "" when it may hold a password
	Reason string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return "endpoint: " + e.Reason
	}
	return "endpoint " + strconv.Quote(e.Value) + ": " + e.Reason
}

func fail(v, reason string) *Error {
	if strings.Contains(v, "@") {
		// user:password@host: the value may hold a secret, which an error
		// must not repeat.
		v = ""
	}
	return &Error{Value: v, Reason: reason}
}

var hostnamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// Form is the shape of an endpoint, as errors state it.
const Form = "must be https://HOST[:PORT] or HOST[:PORT]"

// Parse reads "https://host[:port]", "http://loopback[:port]" or a bare
// "host[:port]" (HTTPS, or HTTP for a loopback host): an SDK given a bare
// host may fall back to plain HTTP, so the scheme is always made explicit.
func Parse(v string) (Endpoint, error) {
	v = strings.TrimSpace(v)
	scheme, rest, hasScheme := strings.Cut(v, "://")
	if !hasScheme {
		scheme, rest = "https", v
	}
	scheme = strings.ToLower(scheme)
	if scheme != "https" && scheme != "http" {
		return Endpoint{}, fail(v, Form+"; the scheme must be https")
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return Endpoint{}, fail(v, Form+"; the host is missing")
	}
	if strings.ContainsAny(rest, "/?#@\\ \t\r\n") {
		return Endpoint{}, fail(v, Form+"; no path, query or user")
	}
	host, port, reason := splitHostPort(rest)
	if reason != "" {
		return Endpoint{}, fail(v, Form+"; "+reason)
	}
	host = strings.ToLower(host)
	addr, err := netip.ParseAddr(host)
	isIP := err == nil
	switch {
	case isIP && addr.Zone() != "":
		return Endpoint{}, fail(v, Form+"; an IPv6 zone is not allowed")
	case !isIP && (len(host) > 253 || !hostnamePattern.MatchString(host)):
		return Endpoint{}, fail(v, Form+"; the host must be a DNS name or an IP address")
	}
	e := Endpoint{Scheme: scheme, Host: host, Port: port, Loopback: IsLoopbackHost(host)}
	if !hasScheme && e.Loopback {
		// A bare loopback address is a local emulator, which speaks plain
		// HTTP; nothing in the cloud is ever reached that way.
		e.Scheme = "http"
	}
	if e.Scheme == "http" && !e.Loopback {
		return Endpoint{}, fail(v, "http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https://")
	}
	return e, nil
}

// MustParse is Parse for values known to be valid, such as an emulator's
// own address; it panics otherwise.
func MustParse(v string) Endpoint {
	e, err := Parse(v)
	if err != nil {
		panic(err)
	}
	return e
}

// IsLoopbackHost reports whether host (a name or an IP address, without
// brackets or port) is this machine: only such a host may be reached over
// plain HTTP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(s string) (host string, port int, reason string) {
	var portText string
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", 0, "unclosed [ in the host"
		}
		rest := s[end+1:]
		host = s[1:end]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", 0, "only an IPv6 address goes in brackets"
		}
		if rest == "" {
			return host, 0, ""
		}
		if !strings.HasPrefix(rest, ":") {
			return "", 0, "text after the host"
		}
		portText = rest[1:]
	} else {
		switch strings.Count(s, ":") {
		case 0:
			return s, 0, ""
		case 1:
			host, portText, _ = strings.Cut(s, ":")
		default:
			return "", 0, "an IPv6 address must be in brackets, like [::1]:9000"
		}
	}
	n, err := strconv.Atoi(portText)
	if err != nil || n < 1 || n > 65535 || portText[0] == '0' || portText[0] == '+' {
		return "", 0, "the port must be a number from 1 to 65535"
	}
	return host, n, ""
}
