// Package trail reads what an ActionTrail trail delivered to a logstore
// between the two cursors of a Log Service trigger event, and turns the
// records into the de-duplicated set of scans they ask for. It is the
// organisation-wide event path: a trail covers every region and, in a
// Resource Directory, every member account, where an EventBridge trigger
// hears only the function's own region.
package trail

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/events"
	"vpnauthz/internal/actiontrail"
	"vpnauthz/internal/retry"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/slssink"
)

const (
	defaultPageSize = 100  // log groups per PullLogs
	maxPageSize     = 1000 // the service's maximum
	maxProblems     = 10
)

// testHookPage, when set by a test, runs after each page is read.
var testHookPage func(page int)

// Malformed counts logs that hold no readable ActionTrail record.
const Malformed actiontrail.Kind = "malformed"

// Options configure Read.
type Options struct {
	// SLSEndpoint is the configured SLS_ENDPOINT. Only a loopback address
	// (the emulated cloud) is used; otherwise the logs are read from the
	// event's own endpoint, over HTTPS.
	SLSEndpoint string
	Credentials scan.Credentials // the invocation's
	PageSize    int              // log groups per PullLogs; default 100, at most 1000
	// Retry bounds how often one page is asked for when the service is
	// busy, throttled, failing (5xx, 429, quota) or unreachable; its zero
	// fields are cloudapi's defaults. Other errors (signature, permission,
	// missing shard or logstore, bad cursor) are final at once.
	Retry retry.Policy
}

// Scan is one connection to scan, or a whole region when ConnectionID is
// empty (a create whose new id was not recorded).
type Scan struct {
	Account      string   // the account that owns it; "" when the records name none
	Region       string   // region id
	ConnectionID string   // "" for every connection of the region
	Events       []string // the calls that asked for it, each once, sorted
}

// Result is what one trigger event's logs ask for.
type Result struct {
	Project  string
	Logstore string
	Shard    int
	Endpoint string // where the logs were read from

	Pages   int // PullLogs answers
	Groups  int // log groups read
	Records int // logs read
	Kept    int // records that asked for a scan
	// Ignored counts the records that asked for none, by reason:
	// actiontrail.Failed, Unrelated, NoRegion, NotVPN, BadID, NoID, and
	// Malformed.
	Ignored  map[actiontrail.Kind]int
	Problems []string // the first malformed records' reasons, for the log

	Scans []Scan // de-duplicated; sorted by account, region, connection

	// Complete is false when the deadline came before the end cursor;
	// Cursor is where reading stopped (the end cursor when complete).
	Complete bool
	Cursor   string
}

// Read pulls the logs between the event's cursors and returns the scans
// their records ask for. It stops at ctx's deadline and reports what it
// read with Complete false. An error means the event is unusable or the
// service refused the read; the caller should fail the invocation so that
// the trigger delivers the event again.
func Read(ctx context.Context, opts Options, ev *events.SLSEvent) (Result, error) {
	src, err := checkEvent(ev)
	if err != nil {
		return Result{}, err
	}
	if opts.PageSize <= 0 {
		opts.PageSize = defaultPageSize
	}
	if opts.PageSize > maxPageSize {
		opts.PageSize = maxPageSize
	}
	res := Result{
		Project: src.project, Logstore: src.logstore, Shard: src.shard,
		Ignored: map[actiontrail.Kind]int{}, Cursor: src.begin,
	}
	ep, err := endpointFor(opts.SLSEndpoint, src.endpoint)
	if err != nil {
		return res, err
	}
	res.Endpoint = ep.URL()
	c, err := slssink.NewCaller(ep, opts.Credentials, opts.Retry)
	if err != nil {
		return res, fmt.Errorf("read the trail: %w", err)
	}
	defer c.Close()

	d := newDedup()
	for res.Cursor != src.end {
		if ctx.Err() != nil {
			break
		}
		gl, next, err := pull(ctx, c, src, res.Cursor, opts.PageSize)
		if err != nil {
			if ctx.Err() != nil {
				break // the deadline, not the service
			}
			return res, err
		}
		res.Pages++
		if testHookPage != nil {
			testHookPage(res.Pages)
		}
		for _, g := range gl.LogGroups {
			res.Groups++
			for _, l := range g.Logs {
				res.read(l, d)
			}
		}
		if len(gl.LogGroups) == 0 || next == res.Cursor {
			// Nothing more before the end cursor: a cursor past it reads
			// as empty and does not move.
			res.Cursor = src.end
			break
		}
		res.Cursor = next
	}
	res.Complete = res.Cursor == src.end
	res.Scans = d.scans()
	return res, nil
}

// read takes one log into the result.
func (res *Result) read(l *sls.Log, d *dedup) {
	res.Records++
	rec, err := parseLog(l)
	if err != nil {
		res.Ignored[Malformed]++
		if len(res.Problems) < maxProblems {
			res.Problems = append(res.Problems, err.Error())
		}
		return
	}
	req, ig := actiontrail.Extract(&rec, actiontrail.Origin{Record: "event"})
	if ig != nil {
		res.Ignored[ig.Kind]++
		return
	}
	res.Kept++
	d.add(req)
}

type source struct {
	endpoint, project, logstore string
	shard                       int
	begin, end                  string
}

// checkEvent names the first missing part of a trigger event.
func checkEvent(ev *events.SLSEvent) (source, error) {
	if ev == nil || ev.Source == nil {
		return source{}, errors.New("log service trigger event: source is missing")
	}
	s := ev.Source
	var src source
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{
		{"source.endpoint", s.Endpoint, &src.endpoint},
		{"source.projectName", s.ProjectName, &src.project},
		{"source.logstoreName", s.LogstoreName, &src.logstore},
		{"source.beginCursor", s.BeginCursor, &src.begin},
		{"source.endCursor", s.EndCursor, &src.end},
	} {
		if f.v == nil || *f.v == "" {
			return source{}, fmt.Errorf("log service trigger event: %s is missing", f.name)
		}
		*f.dst = *f.v
	}
	if s.ShardID == nil {
		return source{}, errors.New("log service trigger event: source.shardId is missing")
	}
	if *s.ShardID < 0 {
		return source{}, fmt.Errorf("log service trigger event: source.shardId %d is negative", *s.ShardID)
	}
	src.shard = *s.ShardID
	return src, nil
}

// dedup keeps one scan per connection, and one per region for a create
// without an id, which covers every connection of its account and region.
type dedup struct {
	byKey map[[3]string]*Scan
}

func newDedup() *dedup { return &dedup{byKey: map[[3]string]*Scan{}} }

func (d *dedup) add(r actiontrail.Request) {
	key := [3]string{r.Account, r.Region, r.ConnectionID}
	s, ok := d.byKey[key]
	if !ok {
		s = &Scan{Account: r.Account, Region: r.Region, ConnectionID: r.ConnectionID}
		d.byKey[key] = s
	}
	if !slices.Contains(s.Events, r.EventName) {
		s.Events = append(s.Events, r.EventName)
	}
}

func (d *dedup) scans() []Scan {
	covered := map[[3]string]bool{}
	for key, s := range d.byKey {
		if key[2] == "" {
			continue
		}
		if whole, ok := d.byKey[[3]string{key[0], key[1], ""}]; ok {
			for _, e := range s.Events {
				if !slices.Contains(whole.Events, e) {
					whole.Events = append(whole.Events, e)
				}
			}
			covered[key] = true
		}
	}
	var out []Scan
	for key, s := range d.byKey {
		if !covered[key] {
			out = append(out, *s)
		}
	}
	for i := range out {
		slices.Sort(out[i].Events)
	}
	slices.SortFunc(out, func(a, b Scan) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region), cmp.Compare(a.ConnectionID, b.ConnectionID))
	})
	return out
}
