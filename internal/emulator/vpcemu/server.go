// Package vpcemu emulates the Alibaba Cloud VPC OpenAPI (version 2016-04-28)
// calls the scanner makes, over real HTTP, for the real SDK: signatures (V3
// and legacy RPC), STS tokens, pagination, error bodies, and fault injection
// (latency, quota, injected errors, connection resets).
package vpcemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"vpnauthz/internal/emulator/cred"
)

// APIVersion is the only version the emulator answers.
const APIVersion = "2016-04-28"

// maxBody bounds request bodies; the SDK sends none.
const maxBody = 1 << 20

// ErrNotFound is returned (wrapped) when a region, connection or
// authorization to change does not exist.
var ErrNotFound = errors.New("not found")

// Options configure a Server.
type Options struct {
	Addr      string     // default "127.0.0.1:0"
	Inventory *Inventory // may be nil (empty)
	// Accounts are the inventories of other accounts, by account id. A call
	// signed with a credential whose Account is one of them sees that
	// account's connections only; a credential with no Account belongs to
	// Inventory's account.
	Accounts    map[string]*Inventory
	Credentials []cred.Credential
	Latency     time.Duration    // added to every call
	Now         func() time.Time // default time.Now; used to check request times and refill the quota
}

// Server is a running emulated VPC API.
type Server struct {
	ln        net.Listener
	srv       *http.Server
	done      chan struct{}
	closeOnce sync.Once

	creds *cred.Store
	now   func() time.Time

	invMu    sync.RWMutex
	inv      *Inventory
	accounts map[string]*Inventory // other accounts, by id

	faults  faults
	answers answers // AnswerNext (codes.go)
	stats   book[CallKey]
	keys    book[string]
	nonces  nonceMemory
}

// New starts a server; it is listening and serving when New returns.
func New(opts Options) (*Server, error) {
	if opts.Inventory != nil {
		if err := opts.Inventory.Validate(); err != nil {
			return nil, fmt.Errorf("vpcemu: inventory: %w", err)
		}
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("vpcemu: listen %s: %w", addr, err)
	}
	s := &Server{
		ln:    ln,
		done:  make(chan struct{}),
		creds: cred.NewStore(opts.Credentials...),
		now:   opts.Now,
		inv:   &Inventory{Regions: map[string][]Connection{}},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Inventory != nil {
		s.inv = opts.Inventory.clone()
	}
	for uid, inv := range opts.Accounts {
		if err := s.AddAccount(uid, inv); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("vpcemu: %w", err)
		}
	}
	s.faults.latency = opts.Latency
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is "127.0.0.1:PORT", the form the SDK's Config.Endpoint wants.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is "http://127.0.0.1:PORT".
func (s *Server) URL() string { return "http://" + s.Addr() }

// Credentials is the store of accepted keys; tests may add to it.
func (s *Server) Credentials() *cred.Store { return s.creds }

// Close stops the server; calls waiting out their latency end at once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
	})
}

// reply is the decided answer of one call.
type reply struct {
	body  any       // success body, without RequestId
	err   *apiError // error answer
	reset bool
	raw   *rawAnswer // a scripted body, sent as it is
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	params := requestParams(r, body)
	key := CallKey{Action: actionOf(r, params), Region: params.Get("RegionId")}
	s.faults.arrived(key)
	sleep(r.Context(), s.done, s.faults.latencyFor(key))

	var rep reply
	var who caller
	switch {
	case readErr != nil:
		rep.err = newAPIError("InvalidParameter").withMessage("The request body could not be read.")
	case len(body) > maxBody:
		rep.err = newAPIError("InvalidParameter").withMessage("The request body is too large.")
	default:
		rep, who = s.handle(r, body, params, &key)
	}
	// Count before answering, so that a client that saw the answer sees the count.
	o := outcome{ok: rep.err == nil && !rep.reset && rep.raw == nil, reset: rep.reset, err: rep.err}
	s.stats.record(key, o)
	s.keys.record(claimedAccessKey(r), o)

	switch {
	case rep.reset:
		resetConnection(w)
	case rep.raw != nil:
		writeRaw(w, rep.raw)
	case rep.err != nil:
		account := who.account
		if account == "" {
			account = s.accountID()
		}
		writeError(w, rep.err, errorContext{action: key.Action, accountID: account, accessKey: who.accessKey})
	default:
		id := newRequestID()
		writeJSON(w, http.StatusOK, id, withRequestID(rep.body, id))
	}
}

func (s *Server) handle(r *http.Request, body []byte, params url.Values, key *CallKey) (reply, caller) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return reply{err: &apiError{status: http.StatusMethodNotAllowed, code: "UnsupportedHTTPMethod", message: "This http method is not supported."}}, caller{}
	}
	if r.URL.Path != "/" {
		return reply{err: newAPIError("InvalidAction.NotFound")}, caller{}
	}
	switch v := versionOf(r, params); {
	case v == "":
		return reply{err: newAPIError("MissingVersion")}, caller{}
	case v != APIVersion:
		return reply{err: newAPIError("InvalidVersion")}, caller{}
	}
	act, ok := actions[key.Action]
	if !ok {
		return reply{err: newAPIError("InvalidAction.NotFound")}, caller{}
	}
	who, e := s.authenticate(r, body)
	if e != nil {
		return reply{err: e}, who
	}
	who.account = s.accountOf(who.accessKey)
	key.Account = who.account
	req, e := act.parse(params)
	if e != nil {
		return reply{err: e}, who
	}
	// Only authenticated, well-formed calls meet scripted answers, injected
	// faults and the quota.
	if rep, ok := s.answers.next(*key); ok {
		return rep, who
	}
	if kind, ok := s.faults.injected(*key); ok {
		if kind == Reset {
			return reply{reset: true}, who
		}
		return reply{err: faultAPIError(kind)}, who
	}
	if !s.faults.allow(*key, s.now()) {
		return reply{err: newAPIError("Throttling.User")}, who
	}
	out, e := act.run(s, who.account, req)
	return reply{body: out, err: e}, who
}

// requestParams merges the query and a form body; the query wins.
func requestParams(r *http.Request, body []byte) url.Values {
	params := r.URL.Query()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" || len(body) == 0 {
		return params
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return params
	}
	for k, vs := range form {
		if !params.Has(k) {
			params[k] = vs
		}
	}
	return params
}

func isV3(r *http.Request) bool { return r.Header.Get("Authorization") != "" }

func actionOf(r *http.Request, params url.Values) string {
	if h := r.Header.Get("x-acs-action"); h != "" && (isV3(r) || params.Get("Action") == "") {
		return h
	}
	return params.Get("Action")
}

func versionOf(r *http.Request, params url.Values) string {
	if h := r.Header.Get("x-acs-version"); h != "" && (isV3(r) || params.Get("Version") == "") {
		return h
	}
	return params.Get("Version")
}

func (s *Server) accountID() string {
	s.invMu.RLock()
	defer s.invMu.RUnlock()
	return s.inv.AccountID
}

// PutConnection adds the connection to the region, or replaces the one with
// the same id in place.
func (s *Server) PutConnection(region string, c Connection) {
	c = c.clone()
	s.invMu.Lock()
	defer s.invMu.Unlock()
	conns := s.inv.Regions[region]
	for i := range conns {
		if conns[i].VpnConnectionId == c.VpnConnectionId {
			conns[i] = c
			return
		}
	}
	s.inv.Regions[region] = append(conns, c)
}

// DeleteConnection removes a connection; it reports whether it existed.
func (s *Server) DeleteConnection(region, id string) bool {
	s.invMu.Lock()
	defer s.invMu.Unlock()
	conns := s.inv.Regions[region]
	for i := range conns {
		if conns[i].VpnConnectionId == id {
			s.inv.Regions[region] = append(conns[:i:i], conns[i+1:]...)
			return true
		}
	}
	return false
}

// Grant appends an authorization to a connection.
func (s *Server) Grant(region, id string, a Authorization) error {
	s.invMu.Lock()
	defer s.invMu.Unlock()
	c := s.findLocked(region, id)
	if c == nil {
		return fmt.Errorf("grant on %s in %s: connection %w", id, region, ErrNotFound)
	}
	c.Authorizations = append(c.Authorizations[:len(c.Authorizations):len(c.Authorizations)], a)
	return nil
}

// Revoke removes the connection's authorizations to bindUid and bindInstance
// ("" matches any instance).
func (s *Server) Revoke(region, id string, bindUid int64, bindInstance string) error {
	s.invMu.Lock()
	defer s.invMu.Unlock()
	c := s.findLocked(region, id)
	if c == nil {
		return fmt.Errorf("revoke on %s in %s: connection %w", id, region, ErrNotFound)
	}
	kept := make([]Authorization, 0, len(c.Authorizations))
	for _, a := range c.Authorizations {
		if a.BindUid == bindUid && (bindInstance == "" || a.BindInstance == bindInstance) {
			continue
		}
		kept = append(kept, a)
	}
	if len(kept) == len(c.Authorizations) {
		return fmt.Errorf("revoke on %s in %s: authorization to %d %s %w", id, region, bindUid, bindInstance, ErrNotFound)
	}
	c.Authorizations = kept
	return nil
}

// Snapshot returns a deep copy of the inventory.
func (s *Server) Snapshot() *Inventory {
	s.invMu.RLock()
	defer s.invMu.RUnlock()
	return s.inv.clone()
}

func (s *Server) findLocked(region, id string) *Connection {
	conns := s.inv.Regions[region]
	for i := range conns {
		if conns[i].VpnConnectionId == id {
			return &conns[i]
		}
	}
	return nil
}
