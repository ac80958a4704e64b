package vpcapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"
)

// maxKeptBody bounds the answer a call keeps for a second reading.
const maxKeptBody = 4 << 20

// call is the SDK's HTTP client for one call (dara.HttpClient): it gives
// the request the call's context, so a cancelled scan or an expired call
// closes the connection instead of leaving a goroutine waiting on the SDK,
// and it notes what happened on the wire, so that errors are told apart by
// what they are and not by the SDK's message text. One call, one goroutine:
// no locking.
type call struct {
	ctx      context.Context
	http     *http.Client
	keepBody bool // keep the answer's body (up to maxKeptBody) in body

	status       int   // of the answer; 0: none came
	transportErr error // sending, or reading the answer, failed
	body         bytes.Buffer
}

// Call implements the SDK's HttpClient; the SDK's transport is not used.
func (c *call) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	resp, err := c.http.Do(req.WithContext(c.ctx))
	if err != nil {
		c.transportErr = err
		return nil, err
	}
	c.status = resp.StatusCode
	resp.Body = &watchedBody{ReadCloser: resp.Body, c: c}
	return resp, nil
}

// watchedBody notes a failure to read the answer, and keeps the answer when
// asked to.
type watchedBody struct {
	io.ReadCloser
	c *call
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.c.keepBody && b.c.body.Len()+n <= maxKeptBody {
		b.c.body.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		b.c.transportErr = err
	}
	return n, err
}

// decodeAuthorizations reads a DescribeVpnCrossAccountAuthorizations answer
// in either shape: the list bare, as the API reference shows it, or wrapped
// in {"CrossAccountAuthorization": […]}, as an older SDK reads it. It
// returns nil when the body is neither.
func decodeAuthorizations(data []byte) *vpc.DescribeVpnCrossAccountAuthorizationsResponseBody {
	var raw struct {
		TotalCount                 *int32
		PageNumber                 *int32
		PageSize                   *int32
		RequestId                  *string
		CrossAccountAuthorizations json.RawMessage
	}
	if json.Unmarshal(data, &raw) != nil {
		return nil
	}
	type item = vpc.DescribeVpnCrossAccountAuthorizationsResponseBodyCrossAccountAuthorizations
	var list []*item
	if trimmed := bytes.TrimSpace(raw.CrossAccountAuthorizations); len(trimmed) > 0 && trimmed[0] == '{' {
		var wrapped struct{ CrossAccountAuthorization []*item }
		if json.Unmarshal(trimmed, &wrapped) != nil {
			return nil
		}
		list = wrapped.CrossAccountAuthorization
	} else if len(trimmed) > 0 && json.Unmarshal(trimmed, &list) != nil {
		return nil
	}
	return &vpc.DescribeVpnCrossAccountAuthorizationsResponseBody{
		TotalCount:                 raw.TotalCount,
		PageNumber:                 raw.PageNumber,
		PageSize:                   raw.PageSize,
		RequestId:                  raw.RequestId,
		CrossAccountAuthorizations: list,
	}
}
