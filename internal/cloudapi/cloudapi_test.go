package cloudapi

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/alibabacloud-go/tea/tea"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		raw     string
		want    Endpoint
		wantErr string
	}{
		{"", Endpoint{Protocol: "https"}, ""},
		{"sts.aliyuncs.com", Endpoint{Host: "sts.aliyuncs.com", Protocol: "https"}, ""},
		{"https://sts.aliyuncs.com/", Endpoint{Host: "sts.aliyuncs.com", Protocol: "https"}, ""},
		{"http://127.0.0.1:8080", Endpoint{Host: "127.0.0.1:8080", Protocol: "http", Loopback: true}, ""},
		{"http://localhost:1", Endpoint{Host: "localhost:1", Protocol: "http", Loopback: true}, ""},
		{"http://sts.aliyuncs.com", Endpoint{}, "plain http is only for a loopback host"},
		{"ftp://127.0.0.1", Endpoint{}, "unsupported scheme"},
		{"https://h/path", Endpoint{}, "want https://host"},
		{"https://user:pw@h", Endpoint{}, "want https://host"},
	}
	for _, tt := range tests {
		got, err := ParseEndpoint("STS_ENDPOINT", tt.raw)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "STS_ENDPOINT") {
				t.Errorf("ParseEndpoint(%q) err = %v, want %q naming the setting", tt.raw, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("error echoes the password: %v", err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", tt.raw, got, err, tt.want)
		}
	}
}

func TestMapErrorWithholdsTheStringToSign(t *testing.T) {
	se := tea.NewSDKError(map[string]interface{}{
		"code":       "SignatureDoesNotMatch",
		"statusCode": 400,
		"message":    "code: 400, Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3DCAISsecret request id: R1",
		"data":       map[string]interface{}{"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3DCAISsecret", "RequestId": "R1"},
	})
	err := MapError(context.Background(), "AssumeRole", se)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "SignatureDoesNotMatch" || ae.HTTPStatus != 400 || ae.RequestID != "R1" {
		t.Fatalf("err = %#v", err)
	}
	if strings.Contains(err.Error(), "CAISsecret") {
		t.Errorf("error holds the token: %v", err)
	}
	if ae.Transient() || ae.Throttled() {
		t.Error("a signature error is not transient")
	}
	for code, want := range map[string]bool{"Throttling.User": true, "Throttling": true, "Rejected.Throttling": true, "ThrottlingX": false} {
		if got := (&APIError{Code: code, HTTPStatus: 400}).Throttled(); got != want {
			t.Errorf("Throttled(%s) = %v", code, got)
		}
	}
	if !(&APIError{Code: "InternalError", HTTPStatus: 500}).Transient() {
		t.Error("a 500 is transient")
	}
}
