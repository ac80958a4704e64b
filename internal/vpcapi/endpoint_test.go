package vpcapi

import "testing"

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in       string
		host     string
		protocol string
		loopback bool
		bad      bool
	}{
		{in: "", host: "", protocol: "https"},
		{in: "http://127.0.0.1:8080", host: "127.0.0.1:8080", protocol: "http", loopback: true},
		{in: "http://127.0.0.1:8080/", host: "127.0.0.1:8080", protocol: "http", loopback: true},
		{in: "http://localhost:9", host: "localhost:9", protocol: "http", loopback: true},
		{in: "http://[::1]:9", host: "[::1]:9", protocol: "http", loopback: true},
		{in: "HTTP://127.0.0.2:9", host: "127.0.0.2:9", protocol: "http", loopback: true},
		{in: "https://vpc-vpc.cn-hangzhou.aliyuncs.com", host: "vpc-vpc.cn-hangzhou.aliyuncs.com", protocol: "https"},
		{in: "https://vpc.example.com:8443", host: "vpc.example.com:8443", protocol: "https"},
		{in: "vpc.cn-shanghai.aliyuncs.com", host: "vpc.cn-shanghai.aliyuncs.com", protocol: "https"},
		{in: "https://127.0.0.1:8443", host: "127.0.0.1:8443", protocol: "https", loopback: true},
		{in: "http://10.0.0.1:80", bad: true},
		{in: "http://vpc.aliyuncs.com", bad: true},
		{in: "http://127.0.0.1.example.com:80", bad: true},
		{in: "ftp://127.0.0.1:21", bad: true},
		{in: "https://user:pw@vpc.example.com", bad: true},
		{in: "https://vpc.example.com/path", bad: true},
		{in: "https://vpc.example.com?x=1", bad: true},
		{in: "https://", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ep, err := parseEndpoint(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("parseEndpoint(%q) = %+v, want an error", tt.in, ep)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEndpoint(%q): %v", tt.in, err)
			}
			if ep.host != tt.host || ep.protocol != tt.protocol || ep.loopback != tt.loopback {
				t.Errorf("parseEndpoint(%q) = %+v, want host %q protocol %q loopback %v", tt.in, ep, tt.host, tt.protocol, tt.loopback)
			}
		})
	}
}

func TestSplitSDKMessage(t *testing.T) {
	msg, id := splitSDKMessage("code: 404, The specified vpn connection instance id does not exist. request id: R2", "")
	if msg != "The specified vpn connection instance id does not exist." || id != "R2" {
		t.Errorf("got %q, %q", msg, id)
	}
}
