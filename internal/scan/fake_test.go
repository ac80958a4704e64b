package scan

import (
	"context"
	"fmt"
	"sync"
	"time"

	"vpnauthz/internal/policy"
)

// fakeSource is an in-memory VPC API: connections per region, authorizations
// per connection, scripted errors, latency, and a hook that runs before each
// authorization page is served (to change the data mid-read).
type fakeSource struct {
	mu       sync.Mutex
	conns    map[string][]string               // region → connection ids, in listing order
	auths    map[string][]policy.Authorization // connection id → authorizations
	errs     map[string][]error                // connection id (or "list:REGION") → errors to return, in order; nil entries succeed
	latency  time.Duration
	maxPage  int // the server's own page cap; 0: as asked
	beforeAz func(id string, page int)
	// fixedTotal, when set, is the TotalCount answered for a connection
	// regardless of the data (a misbehaving server).
	fixedTotal map[string]int
	// endless makes a connection answer full pages forever.
	endless map[string]bool
	// firstPageOnly makes a connection answer page 1 whatever page is asked.
	firstPageOnly map[string]bool

	listCalls map[string]int // region → ListConnections calls
	azCalls   map[string]int // connection id → ListAuthorizations calls
	callTimes []time.Time
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		conns:         map[string][]string{},
		auths:         map[string][]policy.Authorization{},
		errs:          map[string][]error{},
		fixedTotal:    map[string]int{},
		endless:       map[string]bool{},
		firstPageOnly: map[string]bool{},
		listCalls:     map[string]int{},
		azCalls:       map[string]int{},
	}
}

func (f *fakeSource) factory() SourceFactory {
	return func(_ Credentials, _ string) (Source, error) { return f, nil }
}

func auth(id string, i int) policy.Authorization {
	return policy.Authorization{
		VpnConnectionID: id,
		AliUID:          1000,
		BindUID:         2000 + int64(i),
		BindProduct:     "CEN",
		BindInstance:    fmt.Sprintf("cen-%s-%d", id, i),
		CreationTime:    1700000000000,
	}
}

// addConnection adds a connection with n authorizations to region's listing.
func (f *fakeSource) addConnection(region, id string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns[region] = append(f.conns[region], id)
	var as []policy.Authorization
	for i := range n {
		as = append(as, auth(id, i))
	}
	f.auths[id] = as
}

func (f *fakeSource) failWith(key string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[key] = append(f.errs[key], errs...)
}

// begin records a call and pops its scripted error.
func (f *fakeSource) begin(ctx context.Context, key string) error {
	f.mu.Lock()
	f.callTimes = append(f.callTimes, time.Now())
	var err error
	if q := f.errs[key]; len(q) > 0 {
		err, f.errs[key] = q[0], q[1:]
	}
	lat := f.latency
	f.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("fake call: %w", ctx.Err())
		}
	}
	return err
}

func (f *fakeSource) pageBounds(total, page, size int) (int, int) {
	if f.maxPage > 0 && size > f.maxPage {
		size = f.maxPage
	}
	from := min((page-1)*size, total)
	return from, min(from+size, total)
}

func (f *fakeSource) ListConnections(ctx context.Context, region string, page, size int) (ConnectionPage, error) {
	f.mu.Lock()
	f.listCalls[region]++
	f.mu.Unlock()
	if err := f.begin(ctx, "list:"+region); err != nil {
		return ConnectionPage{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := f.conns[region]
	from, to := f.pageBounds(len(ids), page, size)
	return ConnectionPage{IDs: append([]string(nil), ids[from:to]...), TotalCount: len(ids)}, nil
}

func (f *fakeSource) ListAuthorizations(ctx context.Context, region, id string, page, size int) (AuthorizationPage, error) {
	f.mu.Lock()
	f.azCalls[id]++
	hook := f.beforeAz
	f.mu.Unlock()
	if err := f.begin(ctx, id); err != nil {
		return AuthorizationPage{}, err
	}
	if hook != nil {
		hook(id, page)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.endless[id] {
		var as []policy.Authorization
		for i := range size {
			as = append(as, auth(id, page*size+i))
		}
		return AuthorizationPage{Authorizations: as, TotalCount: (page + 1) * size}, nil
	}
	as := f.auths[id]
	if f.firstPageOnly[id] {
		page = 1
	}
	from, to := f.pageBounds(len(as), page, size)
	total := len(as)
	if t, ok := f.fixedTotal[id]; ok {
		total = t
	}
	return AuthorizationPage{Authorizations: append([]policy.Authorization(nil), as[from:to]...), TotalCount: total}, nil
}

func (f *fakeSource) azCallsOf(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.azCalls[id]
}

func (f *fakeSource) listCallsOf(region string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listCalls[region]
}

// revoke removes the first authorization of id; grant prepends a new one.
func (f *fakeSource) revokeFirst(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auths[id] = f.auths[id][1:]
}

func (f *fakeSource) grantFirst(id string, i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auths[id] = append([]policy.Authorization{auth(id, i)}, f.auths[id]...)
}

func (f *fakeSource) grantLast(id string, i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auths[id] = append(f.auths[id], auth(id, i))
}
