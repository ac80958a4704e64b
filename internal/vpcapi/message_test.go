package vpcapi

import "testing"

func TestSplitSDKMessage(t *testing.T) {
	msg, id := splitSDKMessage("code: 404, The specified vpn connection instance id does not exist. request id: R2", "")
	if msg != "The specified vpn connection instance id does not exist." || id != "R2" {
		t.Errorf("got %q, %q", msg, id)
	}
}
