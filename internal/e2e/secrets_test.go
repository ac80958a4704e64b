package e2e

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/vpcemu"
)

// TestSecretsNeverLeave runs successful scans, failures (Log Service down,
// VPC API faults, a signature the API refuses), a configuration error and
// refused HTTP requests with canary secrets — access key secrets, STS tokens,
// the HTTP bearer token — and searches every byte the function wrote and
// answered, and everything Log Service stored, for them.
func TestSecretsNeverLeave(t *testing.T) {
	c := startCloud(t, nil)
	key := c.addKey()
	// A known key signed with a wrong secret: the VPC API refuses it.
	badSecret := cred.Credential{AccessKeyID: key.AccessKeyID, AccessKeySecret: "wrong" + rand.Text() + rand.Text(), SecurityToken: key.SecurityToken}
	bearer := "bearer-" + rand.Text() + rand.Text()
	wrongBearer := "guess-" + rand.Text() + rand.Text()
	canaries := map[string]string{
		"access key secret":       key.AccessKeySecret,
		"STS token":               key.SecurityToken,
		"HTTP_AUTH_TOKEN":         bearer,
		"wrong access key secret": badSecret.AccessKeySecret,
		"caller's wrong bearer":   wrongBearer,
	}

	env := c.functionEnv()
	env["HTTP_AUTH_TOKEN"] = bearer
	env["LOG_LEVEL"] = "debug"
	f := startFunction(t, c, env)
	badEnv := c.functionEnv()
	badEnv["HTTP_AUTH_TOKEN"] = bearer
	badEnv["LOG_LEVEL"] = "debug"
	badEnv["SCAN_TARGETS"] = "cn-hangzhou:* hangzhou-1:vco-x"
	broken := startFunction(t, c, badEnv)

	post := func(authz string) []byte {
		h := map[string]any{"Authorization": authz, "Content-Type": "application/json"}
		if authz == "" {
			h["Authorization"] = nil
		}
		return httpEvent(t, withRequest("POST", "/scans", `{"targets":["cn-hangzhou:*","cn-shanghai:*"]}`, h))
	}
	var answers [][]byte
	runs := []struct {
		name    string
		fn      *function
		payload []byte
		key     *cred.Credential
		timeout time.Duration
		before  func()
		after   func()
	}{
		{name: "timer scan", fn: f, payload: readEvent(t, "timer.json"), key: &key},
		{name: "HTTP scan", fn: f, payload: post("Bearer " + bearer), key: &key},
		{name: "event scan", fn: f, payload: readEvent(t, "eventbridge-grant.json"), key: &key},
		{name: "HTTP health", fn: f, payload: readEvent(t, "http-get-health.json"), key: &key},
		{name: "HTTP wrong bearer", fn: f, payload: post("Bearer " + wrongBearer), key: &key},
		{name: "HTTP no bearer", fn: f, payload: post(""), key: &key},
		{name: "VPC API faults", fn: f, payload: readEvent(t, "timer.json"), key: &key,
			before: func() { c.VPC.FailNext("", "", 6, vpcemu.ServiceUnavailable); c.VPC.FailNext("", "", 2, vpcemu.Reset) }},
		{name: "signature refused", fn: f, payload: readEvent(t, "timer.json"), key: &badSecret},
		{name: "Log Service down, timer", fn: f, payload: readEvent(t, "timer.json"), key: &key, timeout: 3 * time.Second,
			before: func() { c.SLS.SetDown(true) }, after: func() { c.SLS.SetDown(false) }},
		{name: "Log Service down, HTTP", fn: f, payload: post("Bearer " + bearer), key: &key, timeout: 3 * time.Second,
			before: func() { c.SLS.SetDown(true) }, after: func() { c.SLS.SetDown(false) }},
		{name: "configuration error, timer", fn: broken, payload: readEvent(t, "timer.json"), key: &key},
		{name: "configuration error, HTTP", fn: broken, payload: post("Bearer " + bearer), key: &key},
		{name: "configuration error, wrong bearer", fn: broken, payload: post("Bearer " + wrongBearer), key: &key},
	}
	for _, run := range runs {
		if run.before != nil {
			run.before()
		}
		res := run.fn.invoke(t, call{payload: run.payload, key: run.key, timeout: run.timeout})
		if run.after != nil {
			run.after()
		}
		answers = append(answers, res.Response)
		if res.Error != nil {
			answers = append(answers, []byte(res.Error.ErrorType+" "+res.Error.ErrorMessage), res.Error.StackTrace)
		}
		what := string(res.Response)
		if res.Error != nil {
			what = res.Error.ErrorType + ": " + res.Error.ErrorMessage
		}
		t.Logf("%s: %.160s", run.name, what)
	}

	places := map[string][]byte{
		"function stdout":               f.stdout.Bytes(),
		"function stderr":               f.stderr.Bytes(),
		"misconfigured function stdout": broken.stdout.Bytes(),
		"misconfigured function stderr": broken.stderr.Bytes(),
		"answers and errors":            bytes.Join(answers, []byte("\n")),
		"Log Service":                   storedText(c),
	}
	if len(places["Log Service"]) == 0 || !bytes.Contains(places["function stdout"], []byte(key.AccessKeyID)) {
		t.Errorf("the runs left too little behind to search (Log Service %d bytes)", len(places["Log Service"]))
	}
	found := 0
	for name, secret := range canaries {
		for place, data := range places {
			if n := bytes.Count(data, []byte(secret)); n > 0 {
				found += n
				t.Errorf("the %s appears %d times in the %s", name, n, place)
			}
		}
	}
	total := 0
	for _, d := range places {
		total += len(d)
	}
	t.Logf("%d runs, %d canaries, %d bytes searched, %d occurrences found", len(runs), len(canaries), total, found)
}

// storedText is everything Log Service holds, as text.
func storedText(c *cloud) []byte {
	var b strings.Builder
	for _, l := range c.SLS.Logs(c.Project, c.Logstore) {
		b.WriteString(l.Topic + " " + l.Source + "\n")
		for k, v := range l.Tags {
			b.WriteString(k + "=" + v + "\n")
		}
		for k, v := range l.Contents {
			b.WriteString(k + "=" + v + "\n")
		}
	}
	return []byte(b.String())
}
