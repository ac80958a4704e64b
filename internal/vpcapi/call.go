package vpcapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/alibabacloud-go/tea/dara"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"
)

// maxBody bounds the answer a call reads: a page of 50 authorizations is a
// few kilobytes.
const maxBody = 4 << 20

// call is the SDK's HTTP client for one call (dara.HttpClient): it gives
// the request the call's context, so a cancelled scan or an expired call
// closes the connection instead of leaving a goroutine waiting on the SDK,
// and it notes what happened on the wire, so that errors are told apart by
// what they are and not by the SDK's message text. One call, one goroutine:
// no locking.
type call struct {
	ctx  context.Context
	http *http.Client

	status       int   // of the answer; 0: none came
	transportErr error // sending, or reading the answer, failed
	body         *bytes.Buffer
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

// watchedBody notes a failure to read the answer, by the SDK (an error
// answer) or by read.
type watchedBody struct {
	io.ReadCloser
	c *call
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.c.transportErr = err
	}
	return n, err
}

// buffers hold answers while they are decoded: a scan reads thousands of
// pages of about the same size.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// read reads the answer whole into c.body, which release gives back.
func (c *call) read(r io.Reader) error {
	c.body = buffers.Get().(*bytes.Buffer)
	c.body.Reset()
	n, err := c.body.ReadFrom(io.LimitReader(r, maxBody+1))
	if err == nil && n > maxBody {
		err = errors.New("the answer is larger than 4 MiB")
	}
	return err
}

func (c *call) release() {
	if c.body != nil && c.body.Cap() <= 1<<20 {
		buffers.Put(c.body)
	}
	c.body = nil
}

// decode reads an answer into the SDK's response model. The models' json
// tags are the API's keys, so encoding/json reads the published shape
// directly; anything it refuses is given to the SDK's own, lenient decoding
// (numbers as strings and the like), so that no answer the SDK reads is
// refused here.
func decode(data []byte, out any) error {
	if err := json.Unmarshal(data, out); err == nil {
		return nil
	}
	obj, err := dara.ReadAsJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	m, ok := obj.(map[string]any)
	if !ok {
		return errors.New("the answer is not a JSON object")
	}
	return dara.Convert(m, out)
}

type authorizationsBody = vpc.DescribeVpnCrossAccountAuthorizationsResponseBody

// decodeAuthorizations reads a DescribeVpnCrossAccountAuthorizations answer
// in either shape: the list bare, as the API reference shows it and the SDK
// reads it, or wrapped in {"CrossAccountAuthorization": […]}, as an older
// SDK reads it.
func decodeAuthorizations(data []byte) (*authorizationsBody, error) {
	var body authorizationsBody
	err := decode(data, &body)
	if err == nil {
		return &body, nil
	}
	if wrapped := decodeWrappedAuthorizations(data); wrapped != nil {
		return wrapped, nil
	}
	return nil, err
}

// decodeWrappedAuthorizations reads the wrapped shape, or returns nil.
func decodeWrappedAuthorizations(data []byte) *authorizationsBody {
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
	trimmed := bytes.TrimSpace(raw.CrossAccountAuthorizations)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil
	}
	type item = vpc.DescribeVpnCrossAccountAuthorizationsResponseBodyCrossAccountAuthorizations
	var wrapped struct{ CrossAccountAuthorization []*item }
	if json.Unmarshal(trimmed, &wrapped) != nil {
		return nil
	}
	return &authorizationsBody{
		TotalCount:                 raw.TotalCount,
		PageNumber:                 raw.PageNumber,
		PageSize:                   raw.PageSize,
		RequestId:                  raw.RequestId,
		CrossAccountAuthorizations: wrapped.CrossAccountAuthorization,
	}
}
