package e2e

import (
	"bytes"
	"strings"
	"testing"

	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/vpcemu"
)

// TestSecretsNeverLeaveOrganisation extends the canary test to member
// accounts: with debug logging, an organisation scan (members refusing the
// role among them), HTTP scans of member targets (one refused), an event
// from a member account, a member whose VPC calls fail and a fan-out
// through the emulated FC. Every access key secret and STS token the
// emulated STS issued to the function — and the invocation's own, and the
// ExternalId — is searched for in the functions' output, every answer and
// everything Log Service holds.
func TestSecretsNeverLeaveOrganisation(t *testing.T) {
	o := startOrg(t)
	o.env["LOG_LEVEL"] = "debug"
	f := startFunction(t, o.cloud, o.env)

	m1, denied := orgMember(1), orgMember(orgDeniedA)
	post := func(body string) []byte {
		return httpEvent(t, withRequest("POST", "/scans", body, map[string]any{"Authorization": "Bearer demo-token", "Content-Type": "application/json"}))
	}
	memberEvent := bytes.ReplaceAll(readEvent(t, "eventbridge-grant.json"), []byte(emulator.DemoAccountID), []byte(m1))
	memberEvent = bytes.ReplaceAll(memberEvent, []byte("vco-hz0partner0002"), []byte("vco-m01hz00000001"))

	var answers [][]byte
	runs := 0
	invoke := func(name string, payload []byte) fcResult {
		res := f.invoke(t, call{payload: payload})
		runs++
		answers = append(answers, answerOf(res))
		t.Logf("%s: %.160s", name, answerOf(res))
		return res
	}
	r := asReport(t, invoke("timer, whole organisation", timerEvent))
	stored := o.stored(r.ScanID)
	want := expectedOrg()
	diffVerdicts(t, "organisation scan", orgVerdicts(t, stored), want)

	h := asHTTP(t, invoke("HTTP, a member and a refusing member", post(`{"targets":["`+m1+`/cn-hangzhou:*","`+denied+`/cn-hangzhou:*"]}`)))
	if h.StatusCode != 200 || !strings.Contains(h.Body, m1) || !strings.Contains(h.Body, "NoPermission") {
		t.Errorf("HTTP scan of members: %d %.300s", h.StatusCode, h.Body)
	}
	ev := asReport(t, invoke("event from a member", memberEvent))
	if fs := o.stored(ev.ScanID); len(fs) != 4 || fs[0]["owner_account_id"] != m1 {
		t.Errorf("the member event stored %d findings, want the 4 of %s's connection: %v", len(fs), m1, fs)
	}
	// A member's VPC calls fail: its errors are logged and stored.
	o.VPC.FailNext("DescribeVpnCrossAccountAuthorizations", "cn-shanghai", 12, vpcemu.InternalError)
	invoke("timer, a region's reads failing", timerEvent)

	fx := startFanout(t, o, 6)
	res := fx.invokeAs(t, "1-coordinator-secrets", 0)
	answers = append(answers, answerOf(res))
	runs += 1 + fx.fc.Stats().Deliveries
	if st := fx.fc.Stats(); st.Succeeded != 4 {
		t.Errorf("fan-out: %+v, want 4 workers succeeding", st)
	}

	if !bytes.Contains(f.stdout.Bytes(), []byte(`"level":"DEBUG"`)) {
		t.Error("no debug log line: the search did not cover debug logging")
	}
	issued := len(o.sts.Issued())
	if issued < 2*17 {
		t.Errorf("only %d member tokens issued: the runs did not enter the members", issued)
	}
	o.audit(t, outcome{fault: "canaries: invocation and member secrets, debug logging", runs: runs, expected: len(want), stored: len(stored)}, answers, f, fx.f)
	extID := []byte(orgExternalID)
	for name, data := range map[string][]byte{"stdout": f.stdout.Bytes(), "stderr": f.stderr.Bytes(), "fan-out stdout": fx.f.stdout.Bytes(),
		"answers": bytes.Join(answers, []byte("\n")), "Log Service": storedText(o.cloud)} {
		if n := bytes.Count(data, extID); n > 0 {
			t.Errorf("the ExternalId appears %d times in %s", n, name)
		}
	}
}
