package openapi

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/alibabacloud-go/tea/tea"

	"vpnauthz/internal/cloudapi"
)

func TestMapErrorWithholdsTheStringToSign(t *testing.T) {
	se := tea.NewSDKError(map[string]interface{}{
		"code":       "SignatureDoesNotMatch",
		"statusCode": 400,
		"message":    "code: 400, Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3DCAISsecret request id: R1",
		"data":       map[string]interface{}{"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3DCAISsecret", "RequestId": "R1"},
	})
	err := MapError(context.Background(), "AssumeRole", se)
	var ae *cloudapi.APIError
	if !errors.As(err, &ae) || ae.Code != "SignatureDoesNotMatch" || ae.HTTPStatus != 400 || ae.RequestID != "R1" {
		t.Fatalf("err = %#v", err)
	}
	if strings.Contains(err.Error(), "CAISsecret") {
		t.Errorf("error holds the token: %v", err)
	}
	if c := cloudapi.Classify(err); c != cloudapi.Final {
		t.Errorf("a signature error is %v, want final", c)
	}
}
