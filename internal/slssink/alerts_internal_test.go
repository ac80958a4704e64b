package slssink

import (
	"testing"

	"vpnauthz/internal/endpoint"
)

func TestRegionOfEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ endpoint, want string }{
		{"https://cn-hangzhou.log.aliyuncs.com", "cn-hangzhou"},
		{"cn-shanghai-intranet.log.aliyuncs.com", "cn-shanghai"},
		{"https://ap-southeast-1-vpc.log.aliyuncs.com:443", "ap-southeast-1"},
		{"http://127.0.0.1:8080", ""},
		{"https://log.example.com", ""},
		{"https://a.b.log.aliyuncs.com", ""},
	} {
		// The endpoint reaches it parsed, as Options.Endpoint: its host.
		ep, err := endpoint.Parse(tc.endpoint)
		if err != nil {
			t.Fatalf("endpoint.Parse(%q): %v", tc.endpoint, err)
		}
		if got := regionOfEndpoint(ep.Host); got != tc.want {
			t.Errorf("regionOfEndpoint(%q) = %q, want %q", tc.endpoint, got, tc.want)
		}
	}
}
