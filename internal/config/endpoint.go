package config

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

var hostnamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

const endpointForm = "must be https://HOST[:PORT] or HOST[:PORT]"

// normalizeEndpoint turns "https://host[:port]", "http://loopback[:port]" or
// a bare "host[:port]" (https, or http for a loopback host) into a URL with a
// scheme, because an SDK given a bare host may fall back to plain HTTP. It gives a reason when v
// is not such an endpoint.
func normalizeEndpoint(v string) (string, string) {
	scheme, rest, hasScheme := strings.Cut(v, "://")
	if !hasScheme {
		scheme, rest = "https", v
	}
	scheme = strings.ToLower(scheme)
	if scheme != "https" && scheme != "http" {
		return "", endpointForm + "; the scheme must be https"
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return "", endpointForm + "; the host is missing"
	}
	if strings.ContainsAny(rest, "/?#@\\ \t\r\n") {
		return "", endpointForm + "; no path, query or user"
	}

	host, port, reason := splitHostPort(rest)
	if reason != "" {
		return "", endpointForm + "; " + reason
	}
	host = strings.ToLower(host)
	addr, err := netip.ParseAddr(host)
	isIP := err == nil
	switch {
	case isIP && addr.Zone() != "":
		return "", endpointForm + "; an IPv6 zone is not allowed"
	case !isIP && (len(host) > 253 || !hostnamePattern.MatchString(host)):
		return "", endpointForm + "; the host must be a DNS name or an IP address"
	}
	loopback := host == "localhost" || (isIP && addr.IsLoopback())
	if !hasScheme && loopback {
		// A bare loopback address is a local emulator, which speaks plain HTTP;
		// nothing in the cloud is ever reached that way.
		scheme = "http"
	}
	if scheme == "http" && !loopback {
		return "", "http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https://"
	}

	if isIP && addr.Is6() {
		host = "[" + host + "]"
	}
	u := scheme + "://" + host
	if port != "" {
		u += ":" + port
	}
	return u, ""
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(s string) (host, port, reason string) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", "unclosed [ in the host"
		}
		rest := s[end+1:]
		host = s[1:end]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", "", "only an IPv6 address goes in brackets"
		}
		if rest == "" {
			return host, "", ""
		}
		if !strings.HasPrefix(rest, ":") {
			return "", "", "text after the host"
		}
		port = rest[1:]
	} else {
		switch strings.Count(s, ":") {
		case 0:
			return s, "", ""
		case 1:
			host, port, _ = strings.Cut(s, ":")
		default:
			return "", "", "an IPv6 address must be in brackets, like [::1]:9000"
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
		return "", "", "the port must be a number from 1 to 65535"
	}
	return host, port, ""
}
