package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/tea"
	vpc "github.com/alibabacloud-go/vpc-20160428/v6/client"
	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
)

// PeerOptions configure the naive peer.
type PeerOptions struct {
	// ThrottlePause is how long the peer sleeps after a throttled answer
	// before asking again: a fixed second at the real quota.
	ThrottlePause time.Duration
}

// RunPeer scans every connection of cloud the way a first script against the
// SDKs does it: one region after the other, one connection after the other,
// the SDK's default page size, one PutLogs per finding, and no pacing — a
// throttled call sleeps a fixed pause and is made again. It judges with the
// same policy as vpnauthz, so that the comparison is one of I/O alone.
func RunPeer(ctx context.Context, cloud Cloud, opts PeerOptions) (Result, error) {
	p := &peer{cloud: cloud, opts: opts, policy: Policy(), scanID: newScanID()}
	start := time.Now()
	if err := p.run(ctx); err != nil {
		return Result{}, err
	}
	return Result{
		Wall:         time.Since(start),
		VPCCalls:     p.calls,
		Throttled:    p.throttled,
		Findings:     p.findings,
		PutLogsCalls: int(p.wire.calls.Load()),
		RawBytes:     p.wire.raw.Load(),
		WireBytes:    p.wire.bytes.Load(),
		Complete:     true,
	}, nil
}

type peer struct {
	cloud  Cloud
	opts   PeerOptions
	policy policy.Policy
	scanID string
	wire   countingTransport

	calls, throttled, findings int
}

func (p *peer) run(ctx context.Context) error {
	logs := sls.CreateNormalInterface(p.cloud.SLSEndpoint, p.cloud.Credentials.AccessKeyID,
		p.cloud.Credentials.AccessKeySecret, p.cloud.Credentials.SecurityToken)
	if err := p.reachLoopback(logs); err != nil {
		return err
	}
	for _, region := range Regions {
		client, err := vpc.NewClient(&openapiutil.Config{
			AccessKeyId:     tea.String(p.cloud.Credentials.AccessKeyID),
			AccessKeySecret: tea.String(p.cloud.Credentials.AccessKeySecret),
			SecurityToken:   tea.String(p.cloud.Credentials.SecurityToken),
			RegionId:        tea.String(region),
			Endpoint:        tea.String(strings.TrimPrefix(p.cloud.VPCEndpoint, "http://")),
			Protocol:        tea.String("http"),
		})
		if err != nil {
			return err
		}

		var ids []string
		for page := int32(1); ; page++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			req := &vpc.DescribeVpnConnectionsRequest{RegionId: tea.String(region), PageNumber: tea.Int32(page)}
			var resp *vpc.DescribeVpnConnectionsResponse
			err := p.retryThrottled(func() (err error) {
				resp, err = client.DescribeVpnConnections(req)
				return err
			})
			if err != nil {
				return err
			}
			got := resp.Body.VpnConnections.VpnConnection
			for _, c := range got {
				ids = append(ids, tea.StringValue(c.VpnConnectionId))
			}
			if len(got) == 0 || len(ids) >= int(tea.Int32Value(resp.Body.TotalCount)) {
				break
			}
		}

		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			var auths []policy.Authorization
			var readErr error
			for page := int32(1); ; page++ {
				req := &vpc.DescribeVpnCrossAccountAuthorizationsRequest{
					RegionId: tea.String(region), VpnConnectionId: tea.String(id), PageNumber: tea.Int32(page),
				}
				var resp *vpc.DescribeVpnCrossAccountAuthorizationsResponse
				readErr = p.retryThrottled(func() (err error) {
					resp, err = client.DescribeVpnCrossAccountAuthorizations(req)
					return err
				})
				if readErr != nil {
					break
				}
				got := resp.Body.CrossAccountAuthorizations
				for _, a := range got {
					auths = append(auths, policy.Authorization{
						VpnConnectionID: id,
						AliUID:          tea.Int64Value(a.AliUid),
						BindUID:         tea.Int64Value(a.BindUid),
						BindProduct:     tea.StringValue(a.BindProduct),
						BindInstance:    tea.StringValue(a.BindInstance),
						CreationTime:    tea.Int64Value(a.CreationTime),
					})
				}
				if len(got) == 0 || len(auths) >= int(tea.Int32Value(resp.Body.TotalCount)) {
					break
				}
			}

			var found []finding.Finding
			if readErr != nil {
				found = []finding.Finding{policy.ErrorFinding(region, id, p.cloud.AccountID, readErr.Error(), time.Now())}
			} else {
				found = p.policy.Evaluate(policy.Connection{Region: region, ID: id, AccountID: p.cloud.AccountID, Authorizations: auths}, time.Now())
			}
			for i := range found {
				f := &found[i]
				f.ScanID, f.Trigger = p.scanID, finding.TriggerTimer
				if err := logs.PutLogs(p.cloud.Project, p.cloud.Logstore, findingLogGroup(f)); err != nil {
					return err
				}
				p.findings++
			}
		}
	}
	return nil
}

// newScanID is a scan id shaped like vpnauthz's, so that both sides' logs
// have the same sizes.
func newScanID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// retryThrottled makes call until it is not throttled, sleeping the fixed
// pause in between.
func (p *peer) retryThrottled(call func() error) error {
	for {
		p.calls++
		err := call()
		var se *tea.SDKError
		if errors.As(err, &se) && strings.HasPrefix(tea.StringValue(se.Code), "Throttling") {
			p.throttled++
			time.Sleep(p.opts.ThrottlePause)
			continue
		}
		return err
	}
}

// findingLogGroup is one finding as one log of its own request.
func findingLogGroup(f *finding.Finding) *sls.LogGroup {
	t := uint32(time.Now().Unix())
	values := f.Values()
	contents := make([]*sls.LogContent, len(finding.Keys))
	for i := range finding.Keys {
		contents[i] = &sls.LogContent{Key: tea.String(finding.Keys[i]), Value: tea.String(values[i])}
	}
	return &sls.LogGroup{
		Topic:  tea.String(finding.TopicFinding),
		Source: tea.String("vpnauthz"),
		Logs:   []*sls.Log{{Time: &t, Contents: contents}},
	}
}

// reachLoopback gives the Log Service client an HTTP client that reaches the
// emulated endpoint and counts what is sent. The SDK sends every request to
// {project}.{endpoint}, a name that does not resolve for a loopback address,
// so every connection is dialled to the endpoint itself; the requests are
// otherwise the SDK's own.
func (p *peer) reachLoopback(c sls.ClientInterface) error {
	client, ok := c.(*sls.Client)
	if !ok {
		return errors.New("unexpected Log Service client type")
	}
	ep, err := endpoint.Parse(p.cloud.SLSEndpoint)
	if err != nil {
		return err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = nil
	var d net.Dialer
	base.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, ep.DialAddr())
	}
	p.wire.base = base
	client.SetHTTPClient(&http.Client{Transport: &p.wire})
	return nil
}

// countingTransport counts PutLogs requests and their raw and wire sizes, as
// the request headers of the SDK declare them.
type countingTransport struct {
	base              http.RoundTripper
	calls, raw, bytes atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if raw := req.Header.Get("x-log-bodyrawsize"); req.Method == http.MethodPost && raw != "" {
		t.calls.Add(1)
		n, _ := strconv.ParseInt(raw, 10, 64)
		t.raw.Add(n)
		t.bytes.Add(req.ContentLength)
	}
	return t.base.RoundTrip(req)
}
