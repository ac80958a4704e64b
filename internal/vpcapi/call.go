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

// call is one call on the wire: it carries the call's context, so a
// cancelled scan or an expired call closes the connection, and it notes
// what happened on the wire, so that errors are told apart by what they
// are and not by message text. One call, one goroutine: no locking.
type call struct {
	ctx  context.Context
	http *http.Client

	status       int   // of the answer; 0: none came
	transportErr error // sending, or reading the answer, failed
	body         *bytes.Buffer
}

// send sends req and reads the answer whole into c.body; an error answer
// (HTTP 400–599) is returned as the SDK's error for it.
func (c *call) send(req *http.Request) error {
	resp, err := c.http.Do(req)
	if err != nil {
		c.transportErr = err
		return err
	}
	c.status = resp.StatusCode
	err = c.read(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if c.status >= 400 && c.status < 600 {
		return errorAnswer(c.status, resp.Header.Get("Content-Type"), c.body.Bytes())
	}
	return nil
}

// buffers hold answers while they are decoded: a scan reads thousands of
// pages of about the same size.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// read reads the answer whole into c.body, which release gives back.
func (c *call) read(r io.Reader) error {
	c.body = buffers.Get().(*bytes.Buffer)
	c.body.Reset()
	n, err := c.body.ReadFrom(io.LimitReader(r, maxBody+1))
	if err != nil {
		c.transportErr = err
	} else if n > maxBody {
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
