package endpoint

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		url      string
		hostPort string
		loopback bool
		reason   string // "" : valid
	}{
		{in: "https://vpc-vpc.cn-hangzhou.aliyuncs.com", url: "https://vpc-vpc.cn-hangzhou.aliyuncs.com", hostPort: "vpc-vpc.cn-hangzhou.aliyuncs.com"},
		{in: "vpc.cn-shanghai.aliyuncs.com", url: "https://vpc.cn-shanghai.aliyuncs.com", hostPort: "vpc.cn-shanghai.aliyuncs.com"},
		{in: "HTTPS://Example.COM:8443/", url: "https://example.com:8443", hostPort: "example.com:8443"},
		{in: "http://127.0.0.1:8080", url: "http://127.0.0.1:8080", hostPort: "127.0.0.1:8080", loopback: true},
		{in: "HTTP://127.0.0.2:9", url: "http://127.0.0.2:9", hostPort: "127.0.0.2:9", loopback: true},
		{in: "http://localhost:9", url: "http://localhost:9", hostPort: "localhost:9", loopback: true},
		{in: "http://[::1]:9", url: "http://[::1]:9", hostPort: "[::1]:9", loopback: true},
		{in: "127.0.0.1:9000", url: "http://127.0.0.1:9000", hostPort: "127.0.0.1:9000", loopback: true},
		{in: "https://127.0.0.1:8443", url: "https://127.0.0.1:8443", hostPort: "127.0.0.1:8443", loopback: true},
		{in: "[2001:db8::1]:443", url: "https://[2001:db8::1]:443", hostPort: "[2001:db8::1]:443"},
		{in: "http://10.0.0.1:80", reason: "http:// is allowed only for a loopback host"},
		{in: "http://vpc.aliyuncs.com", reason: "http:// is allowed only for a loopback host"},
		{in: "http://localhost.evil.com", reason: "http:// is allowed only for a loopback host"},
		{in: "http://127.0.0.1.example.com:80", reason: "http:// is allowed only for a loopback host"},
		{in: "ftp://127.0.0.1:21", reason: "the scheme must be https"},
		{in: "https://vpc.example.com/path", reason: "no path, query or user"},
		{in: "https://vpc.example.com?x=1", reason: "no path, query or user"},
		{in: "https://", reason: "the host is missing"},
		{in: "example.com:0", reason: "the port must be a number from 1 to 65535"},
		{in: "example.com:65536", reason: "the port must be a number from 1 to 65535"},
		{in: "::1:9000", reason: "an IPv6 address must be in brackets"},
		{in: "exa_mple.com", reason: "the host must be a DNS name or an IP address"},
		{in: "[fe80::1%eth0]:9", reason: "an IPv6 zone is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := Parse(tt.in)
			if tt.reason != "" {
				var pe *Error
				if !errors.As(err, &pe) || !strings.Contains(pe.Reason, tt.reason) || pe.Value != tt.in {
					t.Fatalf("Parse(%q) = %+v, %v; want an *Error naming the value and saying %q", tt.in, e, err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if e.URL() != tt.url || e.HostPort() != tt.hostPort || e.Loopback != tt.loopback {
				t.Errorf("Parse(%q) = %s (%s, loopback %v), want %s (%s, %v)", tt.in, e.URL(), e.HostPort(), e.Loopback, tt.url, tt.hostPort, tt.loopback)
			}
		})
	}
}

func TestParseNeverEchoesAPassword(t *testing.T) {
	for _, in := range []string{"https://user:s3cret@example.com", "cn-hangzhou=https://u:s3cret@x.example.com"} {
		_, err := ParseRegional(in)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseRegional(%q): %v, want an error without the password", in, err)
		}
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1":     "127.0.0.1:80",
		"https://127.0.0.1":    "127.0.0.1:443",
		"http://[::1]:8080":    "[::1]:8080",
		"https://a.example.cn": "a.example.cn:443",
	} {
		if got := MustParse(in).DialAddr(); got != want {
			t.Errorf("DialAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestRegional(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string // region → URL ("" : the SDK's own)
		str  string
	}{
		{in: "", want: map[string]string{"cn-hangzhou": "", "cn-shanghai": ""}, str: ""},
		{in: "http://127.0.0.1:8080", want: map[string]string{"cn-hangzhou": "http://127.0.0.1:8080", "ap-southeast-1": "http://127.0.0.1:8080"},
			str: "http://127.0.0.1:8080"},
		{in: "https://vpc-vpc.{region}.example.com", want: map[string]string{
			"cn-hangzhou": "https://vpc-vpc.cn-hangzhou.example.com", "eu-central-1": "https://vpc-vpc.eu-central-1.example.com"},
			str: "https://vpc-vpc.{region}.example.com"},
		{in: "{region}.vpc.example.com:8443", want: map[string]string{"cn-beijing": "https://cn-beijing.vpc.example.com:8443"},
			str: "{region}.vpc.example.com:8443"},
		{in: "cn-hangzhou=vpc-a.example.com, cn-shanghai=http://127.0.0.1:9", want: map[string]string{
			"cn-hangzhou": "https://vpc-a.example.com", "cn-shanghai": "http://127.0.0.1:9", "cn-beijing": ""},
			str: "cn-hangzhou=https://vpc-a.example.com,cn-shanghai=http://127.0.0.1:9"},
		{in: "cn-shanghai=vpc-b.example.com\nhttps://vpc.{region}.example.com", want: map[string]string{
			"cn-shanghai": "https://vpc-b.example.com", "cn-beijing": "https://vpc.cn-beijing.example.com"},
			str: "cn-shanghai=https://vpc-b.example.com,https://vpc.{region}.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRegional(tt.in)
			if err != nil {
				t.Fatalf("ParseRegional: %v", err)
			}
			for region, want := range tt.want {
				e, err := r.For(region)
				if err != nil || e.URL() != want {
					t.Errorf("For(%s) = %q, %v; want %q", region, e.URL(), err, want)
				}
			}
			if r.String() != tt.str || r.IsZero() != (tt.str == "") {
				t.Errorf("String() = %q, IsZero %v; want %q", r.String(), r.IsZero(), tt.str)
			}
			if again, err := ParseRegional(r.String()); err != nil || again.String() != r.String() {
				t.Errorf("String() does not read back: %q, %v", again.String(), err)
			}
		})
	}
}

func TestRegionalErrors(t *testing.T) {
	tests := []struct{ in, value, reason string }{
		{"http://vpc.{region}.example.com", "http://vpc.{region}.example.com", "http:// is allowed only for a loopback host"},
		{"https://vpc.example.com:{region}", "https://vpc.example.com:{region}", "the port must be a number"},
		{"https://vpc.example.com/{region}", "https://vpc.example.com/{region}", "no path"},
		{"cn_hangzhou=vpc.example.com", "cn_hangzhou=vpc.example.com", "the region must be a region id"},
		{"=vpc.example.com", "=vpc.example.com", "the region must be a region id"},
		{"cn-hangzhou=a.example.com cn-hangzhou=b.example.com", "cn-hangzhou=b.example.com", "given twice"},
		{"a.example.com b.example.com", "b.example.com", "only one entry may go without REGION="},
		{"cn-hangzhou=ftp://a.example.com", "cn-hangzhou=ftp://a.example.com", "the scheme must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseRegional(tt.in)
			var e *Error
			if !errors.As(err, &e) || e.Value != tt.value || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("ParseRegional(%q) error %v, want value %q and %q", tt.in, err, tt.value, tt.reason)
			}
		})
	}
	r := MustTemplate("https://vpc.{region}.example.com")
	if _, err := r.For("evil.com/x"); err == nil {
		t.Error("a template filled with a value that is not a region id gave an endpoint")
	}
}
