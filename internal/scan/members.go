package scan

import (
	"context"
	"sync"
)

// memberSources is the SourceFactory of a member account's regions: each
// Source asks Members for the account's credentials at every call rather
// than keeping those the account was entered with. Members (the AssumeRole
// cache) hands out the same token until it nears its expiry and a renewed
// one after, so a scan that outlives a member's token signs its later
// calls with the renewed one instead of failing them as expired.
func (r *run) memberSources(account string) SourceFactory {
	return func(creds Credentials, region string) (Source, error) {
		src, err := r.s.opts.NewSource(creds, region)
		if err != nil {
			return nil, err
		}
		return &memberSource{members: r.req.Members, newSource: r.s.opts.NewSource, account: account, region: region,
			key: creds.AccessKeyID, src: src}, nil
	}
}

// memberSource is one region of a member account, built again whenever
// the member's credentials change.
type memberSource struct {
	members         MemberCredentials
	newSource       SourceFactory
	account, region string

	mu  sync.Mutex
	key string // the access key id src signs with
	src Source
}

func (m *memberSource) current(ctx context.Context) (Source, error) {
	c, err := m.members.Credentials(ctx, m.account)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.AccessKeyID != m.key {
		src, err := m.newSource(c, m.region)
		if err != nil {
			return nil, err
		}
		m.src, m.key = src, c.AccessKeyID
	}
	return m.src, nil
}

func (m *memberSource) ListConnections(ctx context.Context, region string, pageNumber, pageSize int) (ConnectionPage, error) {
	src, err := m.current(ctx)
	if err != nil {
		return ConnectionPage{}, err
	}
	return src.ListConnections(ctx, region, pageNumber, pageSize)
}

func (m *memberSource) ListAuthorizations(ctx context.Context, region, connectionID string, pageNumber, pageSize int) (AuthorizationPage, error) {
	src, err := m.current(ctx)
	if err != nil {
		return AuthorizationPage{}, err
	}
	return src.ListAuthorizations(ctx, region, connectionID, pageNumber, pageSize)
}
