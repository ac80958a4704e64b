// Package stsemu emulates the STS OpenAPI (version 2015-04-01) calls an
// organisation scan makes: AssumeRole into a member's role, and
// GetCallerIdentity. Calls are signed as the real SDK signs them — the STS
// client of sts-20150401/v2 v2.0.4 sets SignatureAlgorithm "v2", so its calls
// carry the legacy RPC signature (HMAC-SHA1, parameters in the query); V3
// signatures are accepted too. Issued tokens are published to the stores of
// the other emulated services with the role's account, so that the emulated
// VPC accepts them for that account only.
package stsemu

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/gateway"
)

const (
	apiVersion = "2015-04-01"
	hostID     = "sts.aliyuncs.com"
	product    = "Sts"
	maxBody    = 1 << 20

	// DefaultQuota is the published AssumeRole quota: 100 calls a second per
	// region, API and account (help.aliyun.com, ram "api-sts-2015-04-01-quota").
	DefaultQuota = 100

	minDuration = 900 * time.Second
	maxDuration = 3600 * time.Second
)

// Role is a RAM role of an account.
type Role struct {
	Account string // the role's account uid
	Name    string
	// Trusted are the accounts whose principals the trust policy lets assume
	// the role.
	Trusted []string
	// ExternalID, when set, is required by the trust policy (the
	// sts:ExternalId condition).
	ExternalID string
	// MaxSessionDuration caps DurationSeconds; default 3600 s.
	MaxSessionDuration time.Duration
}

// ARN is acs:ram::<account>:role/<name>; RAM compares role names
// case-insensitively and writes them in lower case in ARNs.
func (r Role) ARN() string { return "acs:ram::" + r.Account + ":role/" + strings.ToLower(r.Name) }

// Options configure a Server.
type Options struct {
	Addr string // default "127.0.0.1:0"
	// Credentials are the callers' keys; a credential's Account is the
	// caller's account ("" means DefaultAccount).
	Credentials    []cred.Credential
	DefaultAccount string
	Roles          []Role
	// Publish are the stores issued tokens are added to (the emulated VPC's,
	// Log Service's...), each with the role's account.
	Publish []*cred.Store
	Now     func() time.Time // default time.Now
	// Quota is AssumeRole calls a second, per caller account; 0 means
	// DefaultQuota, < 0 no quota.
	Quota float64
}

// Stats are the call counters.
type Stats struct {
	AssumeRole        int            // AssumeRole calls that passed authentication
	Issued            int            // tokens issued
	GetCallerIdentity int            // GetCallerIdentity calls answered
	ByCode            map[string]int // error answers by code
	ByRoleAccount     map[string]int // tokens issued per member account
}

// Call is one AssumeRole call that passed authentication, as it came.
type Call struct {
	CallerAccount   string
	CallerKey       string
	RoleArn         string
	RoleSessionName string
	ExternalIDSent  bool // the value itself is not kept
	DurationSeconds string
	LegacySignature bool // RPC HMAC-SHA1 rather than V3
}

// Server is a running emulated STS.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	auth *gateway.Verifier
	now  func() time.Time
	opts Options

	mu       sync.Mutex
	roles    map[string]*Role // by lower-case ARN
	denied   map[string]bool  // lower-case ARN -> trust removed
	failNext []string         // codes of the next calls
	lifetime time.Duration
	limiters map[string]*rate.Limiter
	quota    float64
	burst    int
	stats    Stats
	issued   []cred.Credential
	sessions map[string]session // by issued access key id
	calls    []Call
}

// New starts a server; it is serving when New returns.
func New(opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		now:      now,
		opts:     opts,
		roles:    map[string]*Role{},
		denied:   map[string]bool{},
		sessions: map[string]session{},
		limiters: map[string]*rate.Limiter{},
		quota:    opts.Quota,
		burst:    int(opts.Quota),
		stats:    Stats{ByCode: map[string]int{}, ByRoleAccount: map[string]int{}},
	}
	if s.quota == 0 {
		s.quota, s.burst = DefaultQuota, DefaultQuota
	}
	s.auth = &gateway.Verifier{Store: cred.NewStore(opts.Credentials...), Now: now}
	s.auth.Store.SetClock(now)
	for _, r := range opts.Roles {
		if err := s.AddRole(r); err != nil {
			return nil, fmt.Errorf("stsemu: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stsemu: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is "http://127.0.0.1:PORT".
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops the server.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

// Credentials is the store of callers' keys; tests may add to it.
func (s *Server) Credentials() *cred.Store { return s.auth.Store }

var accountPattern = regexp.MustCompile(`^[0-9]{1,20}$`)

// AddRole adds or replaces a role.
func (s *Server) AddRole(r Role) error {
	if !accountPattern.MatchString(r.Account) {
		return fmt.Errorf("role %q: account %q is not an account id", r.Name, r.Account)
	}
	if !roleNamePattern.MatchString(r.Name) {
		return fmt.Errorf("role %q: not a role name (1-64 letters, digits, '.', '-')", r.Name)
	}
	if r.MaxSessionDuration == 0 {
		r.MaxSessionDuration = maxDuration
	}
	r.Trusted = append([]string(nil), r.Trusted...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[r.ARN()] = &r
	delete(s.denied, r.ARN())
	return nil
}

// DenyRole removes the role's trust in every account: each AssumeRole of it
// is refused with NoPermission, as when a member never trusted the scanner.
func (s *Server) DenyRole(account, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[Role{Account: account, Name: name}.ARN()] = true
}

// FailNext makes the next n AssumeRole calls (authenticated) answer code,
// e.g. "Throttling.User", "ServiceUnavailable", "InternalError".
func (s *Server) FailNext(n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, code)
	}
}

// SetQuota sets the AssumeRole token bucket of each caller account;
// perSecond <= 0 turns it off. Buckets start full.
func (s *Server) SetQuota(perSecond float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if burst < 1 {
		burst = 1
	}
	s.quota, s.burst = perSecond, burst
	s.limiters = map[string]*rate.Limiter{}
}

// SetTokenLifetime makes tokens issued from now on expire after d whatever
// DurationSeconds asked (0: as asked), to test a token expiring mid-scan.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.ByCode = make(map[string]int, len(s.stats.ByCode))
	for k, v := range s.stats.ByCode {
		out.ByCode[k] = v
	}
	out.ByRoleAccount = make(map[string]int, len(s.stats.ByRoleAccount))
	for k, v := range s.stats.ByRoleAccount {
		out.ByRoleAccount[k] = v
	}
	return out
}

// Issued returns the credentials issued so far, secrets included: a test
// looks for them in the function's outputs (they must never appear there).
func (s *Server) Issued() []cred.Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cred.Credential(nil), s.issued...)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var e *gateway.Error
	var out any
	switch {
	case err != nil || len(body) > maxBody:
		e = &gateway.Error{Status: 400, Code: "InvalidParameter", Message: "The request body could not be read."}
	default:
		out, e = s.handle(r, body)
	}
	if e != nil {
		s.mu.Lock()
		s.stats.ByCode[e.Code]++
		s.mu.Unlock()
		gateway.WriteError(w, e, hostID, product)
		return
	}
	id := gateway.RequestID()
	switch b := out.(type) {
	case *assumeRoleBody:
		b.RequestId = id
	case *callerIdentityBody:
		b.RequestId = id
	}
	gateway.WriteJSON(w, http.StatusOK, id, out)
}

func (s *Server) handle(r *http.Request, body []byte) (any, *gateway.Error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, &gateway.Error{Status: 405, Code: "UnsupportedHTTPMethod", Message: "This http method is not supported."}
	}
	params := gateway.Params(r, body)
	action, version := gateway.ActionAndVersion(r, params)
	switch {
	case r.URL.Path != "/":
		return nil, invalidAction()
	case version == "":
		return nil, &gateway.Error{Status: 400, Code: "MissingVersion", Message: "Version is mandatory for this action."}
	case version != apiVersion:
		return nil, &gateway.Error{Status: 400, Code: "InvalidVersion", Message: "Specified parameter Version is not valid."}
	case action != "AssumeRole" && action != "GetCallerIdentity":
		return nil, invalidAction()
	}
	caller, e := s.auth.Verify(r, body)
	if e != nil {
		return nil, e
	}
	if caller.Account == "" {
		caller.Account = s.opts.DefaultAccount
	}
	if action == "GetCallerIdentity" {
		s.mu.Lock()
		s.stats.GetCallerIdentity++
		s.mu.Unlock()
		return s.callerIdentity(caller), nil
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{
		CallerAccount:   caller.Account,
		CallerKey:       caller.AccessKeyID,
		RoleArn:         params.Get("RoleArn"),
		RoleSessionName: params.Get("RoleSessionName"),
		ExternalIDSent:  params.Has("ExternalId"),
		DurationSeconds: params.Get("DurationSeconds"),
		LegacySignature: !gateway.IsV3(r),
	})
	s.mu.Unlock()
	return s.assumeRole(caller, params)
}

// Calls returns the AssumeRole calls that passed authentication, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func invalidAction() *gateway.Error {
	return &gateway.Error{Status: 404, Code: "InvalidAction.NotFound", Message: "Specified api is not found, please check your url and method."}
}

// Parameter rules. RoleSessionName: 2-64 letters, digits and ". @ - _"
// (sts-20150401/v2 v2.0.4 AssumeRoleRequest doc; older help pages said 2-32).
// ExternalId: 2-1224 characters of [\w+=,.@:\/-] (same doc).
var (
	sessionNamePattern = regexp.MustCompile(`^[A-Za-z0-9.@_-]{2,64}$`)
	externalIDPattern  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	roleArnPattern     = regexp.MustCompile(`^acs:ram::([0-9]{1,20}):role/(.+)$`)
	roleNamePattern    = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)
)

// Error codes and messages, from the STS troubleshooting page (help
// document 42775, "STS AssumeRole common errors") and the STS error code
// list (help.aliyun.com ram "api-sts-2015-04-01-errorcodes"); EntityNotExist.Role
// as RAM answers for a missing role (ResourceManager/RAM DeleteRole error table).
func paramError(name string) *gateway.Error {
	return &gateway.Error{Status: 400, Code: "InvalidParameter." + name, Message: "The parameter " + name + " is wrongly formed."}
}

func missing(name string) *gateway.Error {
	return &gateway.Error{Status: 400, Code: "Missing" + name, Message: name + " is mandatory for this action."}
}

func notTrusted() *gateway.Error {
	// The documented message starts "No permission perform sts:AssumeRole on
	// this Role."; the same answer comes for a trust policy that does not name
	// the caller and for an ExternalId condition that does not hold.
	return &gateway.Error{Status: 403, Code: "NoPermission", Message: "No permission perform sts:AssumeRole on this Role. Maybe you should check the role's trust policy."}
}

type assumeRoleBody struct {
	RequestId       string `json:"RequestId"`
	AssumedRoleUser struct {
		Arn           string `json:"Arn"`
		AssumedRoleId string `json:"AssumedRoleId"`
	} `json:"AssumedRoleUser"`
	Credentials struct {
		AccessKeyId     string `json:"AccessKeyId"`
		AccessKeySecret string `json:"AccessKeySecret"`
		Expiration      string `json:"Expiration"`
		SecurityToken   string `json:"SecurityToken"`
	} `json:"Credentials"`
	SourceIdentity string `json:"SourceIdentity,omitempty"`
}

func (s *Server) assumeRole(caller cred.Credential, p map[string][]string) (any, *gateway.Error) {
	get := func(k string) string {
		if v := p[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	s.mu.Lock()
	s.stats.AssumeRole++
	var injected string
	if len(s.failNext) > 0 {
		injected, s.failNext = s.failNext[0], s.failNext[1:]
	}
	s.mu.Unlock()

	arn, sessionName, ext := get("RoleArn"), get("RoleSessionName"), get("ExternalId")
	switch {
	case arn == "":
		return nil, missing("RoleArn")
	case !roleArnPattern.MatchString(arn):
		return nil, paramError("RoleArn")
	case sessionName == "":
		return nil, missing("RoleSessionName")
	case !sessionNamePattern.MatchString(sessionName):
		return nil, paramError("RoleSessionName")
	case ext != "" && (len(ext) < 2 || len(ext) > 1224 || !externalIDPattern.MatchString(ext)):
		return nil, paramError("ExternalId")
	}
	duration := maxDuration
	if v := get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < int(minDuration/time.Second) || n > int(maxDuration/time.Second) {
			return nil, &gateway.Error{Status: 400, Code: "InvalidParameter.DurationSeconds", Message: "The Min/Max value of DurationSeconds is 15min/1hr."}
		}
		duration = time.Duration(n) * time.Second
	}
	if injected != "" {
		return nil, injectedError(injected)
	}
	if !s.allow(caller.Account) {
		return nil, &gateway.Error{Status: 400, Code: "Throttling.User", Message: "Request was denied due to user flow control."}
	}

	m := roleArnPattern.FindStringSubmatch(arn)
	key := Role{Account: m[1], Name: m[2]}.ARN()
	s.mu.Lock()
	role, ok := s.roles[key]
	var r Role
	if ok {
		r = *role
	}
	denied := s.denied[key]
	lifetime := s.lifetime
	s.mu.Unlock()
	if !ok {
		return nil, &gateway.Error{Status: 404, Code: "EntityNotExist.Role", Message: "The specified Role not exists: " + arn}
	}
	if denied || !contains(r.Trusted, caller.Account) {
		return nil, notTrusted()
	}
	if r.ExternalID != "" && ext != r.ExternalID {
		return nil, notTrusted()
	}
	if duration > r.MaxSessionDuration {
		return nil, &gateway.Error{Status: 400, Code: "InvalidParameter.DurationSeconds", Message: fmt.Sprintf("The Min/Max value of DurationSeconds is 15min/%s.", r.MaxSessionDuration)}
	}
	if lifetime > 0 {
		duration = lifetime
	}
	expires := s.now().Add(duration).UTC().Truncate(time.Second)
	issued := cred.Credential{
		AccessKeyID:     "STS.NT" + randomString(12),
		AccessKeySecret: randomString(22),
		SecurityToken:   "CAIS" + randomString(60),
		Expires:         expires,
		Account:         r.Account,
	}
	for _, st := range s.opts.Publish {
		st.Add(issued)
	}
	// A member token may call STS too (role chaining), as the real one may.
	s.auth.Store.Add(issued)
	s.mu.Lock()
	s.stats.Issued++
	s.stats.ByRoleAccount[r.Account]++
	s.issued = append(s.issued, issued)
	s.sessions[issued.AccessKeyID] = session{role: r, name: sessionName}
	s.mu.Unlock()

	out := &assumeRoleBody{SourceIdentity: get("SourceIdentity")}
	out.AssumedRoleUser.Arn = "acs:ram::" + r.Account + ":role/" + strings.ToLower(r.Name) + "/" + sessionName
	out.AssumedRoleUser.AssumedRoleId = roleID(r) + ":" + sessionName
	out.Credentials.AccessKeyId = issued.AccessKeyID
	out.Credentials.AccessKeySecret = issued.AccessKeySecret
	out.Credentials.SecurityToken = issued.SecurityToken
	out.Credentials.Expiration = expires.Format("2006-01-02T15:04:05Z")
	return out, nil
}

func injectedError(code string) *gateway.Error {
	switch {
	case strings.HasPrefix(code, "Throttling"):
		return &gateway.Error{Status: 400, Code: code, Message: "Request was denied due to user flow control."}
	case code == "ServiceUnavailable":
		return &gateway.Error{Status: 503, Code: code, Message: "The request has failed due to a temporary failure of the server."}
	case code == "InternalError":
		return &gateway.Error{Status: 500, Code: code, Message: "The request processing has failed due to some unknown error, exception or failure."}
	case code == "NoPermission":
		return notTrusted()
	}
	return &gateway.Error{Status: 400, Code: code, Message: code}
}

func (s *Server) allow(account string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quota <= 0 {
		return true
	}
	lim, ok := s.limiters[account]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(s.quota), s.burst)
		s.limiters[account] = lim
	}
	return lim.AllowN(s.now(), 1)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// roleID is a stable numeric-looking id of the role, like RAM's.
func roleID(r Role) string {
	var h uint64 = 1469598103934665603
	for _, c := range r.ARN() {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return strconv.FormatUint(h%1e18+3e17, 10)
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// --- GetCallerIdentity

type callerIdentityBody struct {
	RequestId    string `json:"RequestId"`
	AccountId    string `json:"AccountId"`
	Arn          string `json:"Arn"`
	IdentityType string `json:"IdentityType"`
	PrincipalId  string `json:"PrincipalId"`
	UserId       string `json:"UserId,omitempty"`
	RoleId       string `json:"RoleId,omitempty"`
}

// session is the role session an issued key belongs to.
type session struct {
	role Role
	name string
}

func (s *Server) callerIdentity(c cred.Credential) *callerIdentityBody {
	out := &callerIdentityBody{AccountId: c.Account}
	s.mu.Lock()
	sess, assumed := s.sessions[c.AccessKeyID]
	s.mu.Unlock()
	switch {
	case assumed:
		id := roleID(sess.role)
		out.IdentityType = "AssumedRoleUser"
		out.Arn = "acs:ram::" + c.Account + ":assumed-role/" + strings.ToLower(sess.role.Name) + "/" + sess.name
		out.PrincipalId = id + ":" + sess.name
		out.RoleId = id
		return out
	case c.SecurityToken != "":
		// A token this server did not issue: the function's own role.
		out.IdentityType = "AssumedRoleUser"
		out.Arn = "acs:ram::" + c.Account + ":assumed-role/function-role/" + c.AccessKeyID
		out.PrincipalId = c.AccessKeyID
		return out
	}
	out.IdentityType = "RAMUser"
	out.Arn = "acs:ram::" + c.Account + ":user/" + c.AccessKeyID
	out.PrincipalId = c.AccessKeyID
	out.UserId = c.AccessKeyID
	return out
}
