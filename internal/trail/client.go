package trail

import (
	"context"
	"errors"
	"fmt"
	"strings"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/retry"
)

// endpointFor picks where to read. The trigger names the region's internal
// endpoint as http://; the logs are read from that host over HTTPS instead,
// because every request carries the invocation's STS token and the reply
// carries the organisation's audit records, and the service answers HTTPS on
// its internal endpoints as on the public ones. Only hosts of the service's
// domain are accepted: the token must not be sent wherever an event says. A
// loopback SLS_ENDPOINT (the emulated cloud) replaces the event's endpoint.
func endpointFor(configured, fromEvent string) (endpoint.Endpoint, error) {
	if configured != "" {
		if ep, err := endpoint.Parse(configured); err == nil && ep.Loopback {
			return ep, nil
		}
	}
	raw := strings.TrimSpace(fromEvent)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "https", raw
	}
	shown := quote(raw)
	if strings.Contains(raw, "@") {
		shown = "(not shown: it holds a user)" // never a password an event might carry
	}
	if s := strings.ToLower(scheme); s != "http" && s != "https" {
		return endpoint.Endpoint{}, fmt.Errorf("log service trigger event: source.endpoint %s: scheme must be http or https", shown)
	}
	ep, err := endpoint.Parse("https://" + rest)
	if err != nil {
		var ee *endpoint.Error
		if errors.As(err, &ee) {
			return endpoint.Endpoint{}, fmt.Errorf("log service trigger event: source.endpoint %s: %s", shown, ee.Reason)
		}
		return endpoint.Endpoint{}, fmt.Errorf("log service trigger event: source.endpoint %s: %w", shown, err)
	}
	if !strings.HasSuffix(ep.Host, ".aliyuncs.com") || ep.Port != 0 || ep.Loopback {
		return endpoint.Endpoint{}, fmt.Errorf("log service trigger event: source.endpoint %s is not a Log Service endpoint (*.aliyuncs.com)", shown)
	}
	return ep, nil
}

// pull reads one page through the Log Service caller's retry loop: a busy,
// throttled or failing service (5xx, 429, quota) and a connection that fails
// are asked again; a refusal is final.
func pull(ctx context.Context, c logCaller, src source, cursor string, pageSize int) (*sls.LogGroupList, string, error) {
	where := fmt.Sprintf("PullLogs %s/%s shard %d", src.project, src.logstore, src.shard)
	var gl *sls.LogGroupList
	var next string
	err := c.Do(ctx, where, func(cl *sls.Client) error {
		var err error
		gl, next, err = cl.PullLogs(src.project, src.logstore, src.shard, cursor, src.end, pageSize)
		return err
	})
	if err != nil {
		return nil, "", describeFailure(where, err)
	}
	if gl == nil {
		gl = &sls.LogGroupList{}
	}
	return gl, next, nil
}

// logCaller is what pull needs of slssink.Caller.
type logCaller interface {
	Do(ctx context.Context, op string, call func(*sls.Client) error) error
}

// describeFailure makes a refusal by the service a *ReadError; an error
// without an answer (the network, a reply the SDK could not read) is
// returned as it is.
func describeFailure(where string, err error) error {
	var ae *cloudapi.APIError
	if !errors.As(err, &ae) {
		return err
	}
	tries := ""
	var re *retry.Error
	if errors.As(err, &re) && re.Attempts > 1 {
		tries = fmt.Sprintf(" (after %d attempts)", re.Attempts)
	}
	code := ae.Code
	if code == "" {
		code = "(no error code)"
	}
	msg := fmt.Sprintf("%s%s: %d %s: %s", where, tries, ae.HTTPStatus, code, clipText(ae.Message))
	if ae.RequestID != "" {
		msg += " (request id " + ae.RequestID + ")"
	}
	return &ReadError{Status: ae.HTTPStatus, Code: ae.Code, msg: msg, err: err}
}

// ReadError is a refusal by the service: its status and error code, for a
// caller that wants to tell a missing permission from a missing logstore.
// It wraps the *cloudapi.APIError.
type ReadError struct {
	Status int
	Code   string
	msg    string
	err    error
}

func (e *ReadError) Error() string { return e.msg }
func (e *ReadError) Unwrap() error { return e.err }

func clipText(s string) string {
	const n = 300
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
