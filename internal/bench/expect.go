package bench

import (
	"math/bits"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/slssink"
)

// Expected is what a complete scan of an inventory must deliver, judged here
// without any I/O.
type Expected struct {
	Findings int
	LogBytes int64 // raw protobuf of the findings' logs, as fields of a LogGroup
	// MinPutLogs is the fewest PutLogs requests that carry the findings
	// within the limits of one request (logs and raw bytes), plus the one of
	// the scan summary.
	MinPutLogs int
}

// Expect judges inv as of now and sizes the findings' logs the way they go
// on the wire, with a scan id as long as the scanner's.
func Expect(inv *vpcemu.Inventory, now time.Time) Expected {
	p := Policy()
	var e Expected
	t := uint32(now.Unix())
	for region, conns := range inv.Regions {
		for _, c := range conns {
			pc := policy.Connection{Region: region, ID: c.VpnConnectionId, AccountID: inv.AccountID}
			for _, a := range c.Authorizations {
				owner := a.AliUid
				if owner == 0 {
					owner = parseAccount(inv.AccountID)
				}
				pc.Authorizations = append(pc.Authorizations, policy.Authorization{
					VpnConnectionID: c.VpnConnectionId, AliUID: owner, BindUID: a.BindUid,
					BindProduct: a.BindProduct, BindInstance: a.BindInstance, CreationTime: a.CreationTime,
				})
			}
			for _, f := range p.Evaluate(pc, now) {
				f.ScanID, f.Trigger = "0123456789abcdef", finding.TriggerTimer
				e.Findings++
				e.LogBytes += int64(logFieldSize(&f, t))
			}
		}
	}
	budget := int64(slssink.DefaultMaxBatchBytes - groupOverhead())
	byCount := (e.Findings + slssink.MaxBatchLogs - 1) / slssink.MaxBatchLogs
	byBytes := int((e.LogBytes + budget - 1) / budget)
	e.MinPutLogs = max(byCount, byBytes) + 1
	return e
}

func parseAccount(s string) int64 {
	var n int64
	for _, r := range s {
		n = n*10 + int64(r-'0')
	}
	return n
}

// logFieldSize is the bytes one finding adds to a LogGroup: its Log message
// and the field's tag and length.
func logFieldSize(f *finding.Finding, t uint32) int {
	values := f.Values()
	contents := make([]*sls.LogContent, len(finding.Keys))
	for i := range finding.Keys {
		contents[i] = &sls.LogContent{Key: &finding.Keys[i], Value: &values[i]}
	}
	n := (&sls.Log{Time: &t, Contents: contents}).Size()
	return 1 + varintLen(uint64(n)) + n
}

// groupOverhead is a LogGroup's topic and source.
func groupOverhead() int {
	topic, source := finding.TopicFinding, "vpnauthz"
	return (&sls.LogGroup{Topic: &topic, Source: &source}).Size()
}

func varintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }
