// Package rmemu emulates the ResourceManager OpenAPI (version 2020-03-31)
// calls that list a Resource Directory: GetResourceDirectory and the paged
// ListAccounts. Calls are signed with V3 (ACS3-HMAC-SHA256), which
// darabonba-openapi's generic CallApi sends by default; legacy RPC
// signatures are accepted too.
package rmemu

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/gateway"
)

const (
	apiVersion = "2020-03-31"
	hostID     = "resourcemanager.aliyuncs.com"
	product    = "ResourceManager"
	maxBody    = 1 << 20
)

// Account is a member of the directory, as ListAccounts returns it.
type Account struct {
	AccountId   string
	DisplayName string
	// Status: CreateSuccess, InviteSuccess, PromoteSuccess (joined), or
	// e.g. CreateFailed, CreateVerifying, Removing, PromoteVerifying.
	Status string
	// Type: ResourceAccount or CloudAccount.
	Type       string
	FolderId   string
	JoinMethod string // created or invited
}

// Options configure a Server.
type Options struct {
	Addr           string
	Credentials    []cred.Credential // a credential's Account is its caller's account
	DefaultAccount string            // account of credentials with no Account
	DirectoryID    string            // default "rd-emu001"
	// MasterAccountID is the management account; it is listed too (added
	// as a CloudAccount when Accounts does not hold it).
	MasterAccountID string
	// DelegatedAdmins may list the directory as well.
	DelegatedAdmins []string
	Accounts        []Account
	Now             func() time.Time
}

// Stats are the call counters.
type Stats struct {
	ListAccounts, GetResourceDirectory int
	Pages                              map[int]int    // ListAccounts calls by page number
	ByCode                             map[string]int // error answers
}

// Server is a running emulated ResourceManager.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	auth *gateway.Verifier
	opts Options

	mu       sync.Mutex
	accounts []Account
	failPage map[int]*pageFault
	stats    Stats
}

type pageFault struct {
	left int
	code string
}

var uidPattern = regexp.MustCompile(`^[0-9]{1,20}$`)

// New starts a server; it is serving when New returns.
func New(opts Options) (*Server, error) {
	if !uidPattern.MatchString(opts.MasterAccountID) {
		return nil, fmt.Errorf("rmemu: MasterAccountID %q is not an account id", opts.MasterAccountID)
	}
	if opts.DirectoryID == "" {
		opts.DirectoryID = "rd-emu001"
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		opts:     opts,
		auth:     &gateway.Verifier{Store: cred.NewStore(opts.Credentials...), Now: now},
		failPage: map[int]*pageFault{},
		stats:    Stats{Pages: map[int]int{}, ByCode: map[string]int{}},
	}
	if err := s.SetAccounts(opts.Accounts); err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rmemu: listen %s: %w", addr, err)
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

// Credentials is the store of callers' keys; tests may add to it (the
// emulated STS may publish its tokens here).
func (s *Server) Credentials() *cred.Store { return s.auth.Store }

// Close stops the server.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

// SetAccounts replaces the members (the management account is kept listed).
func (s *Server) SetAccounts(accounts []Account) error {
	out := make([]Account, 0, len(accounts)+1)
	hasMaster := false
	seen := map[string]bool{}
	for i, a := range accounts {
		if !uidPattern.MatchString(a.AccountId) {
			return fmt.Errorf("rmemu: Accounts[%d]: %q is not an account id", i, a.AccountId)
		}
		if seen[a.AccountId] {
			return fmt.Errorf("rmemu: Accounts[%d]: %s listed twice", i, a.AccountId)
		}
		seen[a.AccountId] = true
		if a.Status == "" {
			a.Status = "CreateSuccess"
		}
		if a.Type == "" {
			a.Type = "ResourceAccount"
		}
		if a.DisplayName == "" {
			a.DisplayName = "member-" + a.AccountId
		}
		if a.JoinMethod == "" {
			a.JoinMethod = "created"
		}
		hasMaster = hasMaster || a.AccountId == s.opts.MasterAccountID
		out = append(out, a)
	}
	if !hasMaster {
		out = append([]Account{{AccountId: s.opts.MasterAccountID, DisplayName: "management", Status: "CreateSuccess", Type: "CloudAccount", JoinMethod: "created"}}, out...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts = out
	return nil
}

// RemoveAccount takes a member out of the directory (from the next listing).
func (s *Server) RemoveAccount(uid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range s.accounts {
		if a.AccountId == uid {
			s.accounts = append(s.accounts[:i:i], s.accounts[i+1:]...)
			return true
		}
	}
	return false
}

// FailPage makes the next n ListAccounts calls of page number page answer
// code ("ServiceUnavailable", "InternalError", "Throttling.User"...).
func (s *Server) FailPage(page, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPage[page] = &pageFault{left: n, code: code}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Pages = map[int]int{}
	for k, v := range s.stats.Pages {
		out.Pages[k] = v
	}
	out.ByCode = map[string]int{}
	for k, v := range s.stats.ByCode {
		out.ByCode[k] = v
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var out any
	var e *gateway.Error
	if err != nil || len(body) > maxBody {
		e = &gateway.Error{Status: 400, Code: "InvalidParameter", Message: "The request body could not be read."}
	} else {
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
	case *listBody:
		b.RequestId = id
	case *directoryBody:
		b.RequestId = id
	}
	gateway.WriteJSON(w, http.StatusOK, id, out)
}

func (s *Server) handle(r *http.Request, body []byte) (any, *gateway.Error) {
	params := gateway.Params(r, body)
	action, version := gateway.ActionAndVersion(r, params)
	switch {
	case r.Method != http.MethodPost && r.Method != http.MethodGet:
		return nil, &gateway.Error{Status: 405, Code: "UnsupportedHTTPMethod", Message: "This http method is not supported."}
	case r.URL.Path != "/" || (action != "ListAccounts" && action != "GetResourceDirectory"):
		return nil, &gateway.Error{Status: 404, Code: "InvalidAction.NotFound", Message: "Specified api is not found, please check your url and method."}
	case version != apiVersion:
		return nil, &gateway.Error{Status: 400, Code: "InvalidVersion", Message: "Specified parameter Version is not valid."}
	}
	caller, e := s.auth.Verify(r, body)
	if e != nil {
		return nil, e
	}
	account := caller.Account
	if account == "" {
		account = s.opts.DefaultAccount
	}
	if !s.inDirectory(account) {
		// GetResourceDirectory's documented answer for an account outside
		// any directory (resourcedirectorymaster GetResourceDirectory error table).
		return nil, &gateway.Error{Status: 404, Code: "ResourceDirectoryNotInUse", Message: "The specified account is not an Alibaba Cloud account or a member account of the resource directory."}
	}
	if action == "GetResourceDirectory" {
		s.mu.Lock()
		s.stats.GetResourceDirectory++
		s.mu.Unlock()
		return s.directory(), nil
	}
	s.mu.Lock()
	s.stats.ListAccounts++
	s.mu.Unlock()
	if account != s.opts.MasterAccountID && !contains(s.opts.DelegatedAdmins, account) {
		// Only the management account or a delegated administrator may list
		// (ListAccounts doc 160016); the code is the one Resource Management
		// documents for a member calling a management operation.
		return nil, &gateway.Error{Status: 409, Code: "NoPermission.ResourceDirectory.MemberAccount", Message: "ResourceDirectory Member Account is not authorized to perform this operation."}
	}
	return s.list(params)
}

func (s *Server) inDirectory(account string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accounts {
		if a.AccountId == account {
			return true
		}
	}
	return false
}

type directoryBody struct {
	RequestId         string `json:"RequestId"`
	ResourceDirectory struct {
		ResourceDirectoryId string `json:"ResourceDirectoryId"`
		MasterAccountId     string `json:"MasterAccountId"`
		MasterAccountName   string `json:"MasterAccountName"`
		RootFolderId        string `json:"RootFolderId"`
		CreateTime          string `json:"CreateTime"`
	} `json:"ResourceDirectory"`
}

func (s *Server) directory() *directoryBody {
	b := &directoryBody{}
	b.ResourceDirectory.ResourceDirectoryId = s.opts.DirectoryID
	b.ResourceDirectory.MasterAccountId = s.opts.MasterAccountID
	b.ResourceDirectory.MasterAccountName = "management"
	b.ResourceDirectory.RootFolderId = "r-emu001"
	b.ResourceDirectory.CreateTime = "2024-01-01T00:00:00.000Z"
	return b
}

type accountItem struct {
	AccountId           string `json:"AccountId"`
	DisplayName         string `json:"DisplayName"`
	FolderId            string `json:"FolderId"`
	JoinMethod          string `json:"JoinMethod"`
	JoinTime            string `json:"JoinTime"`
	ModifyTime          string `json:"ModifyTime"`
	ResourceDirectoryId string `json:"ResourceDirectoryId"`
	Status              string `json:"Status"`
	Type                string `json:"Type"`
}

type listBody struct {
	RequestId  string `json:"RequestId"`
	PageNumber int    `json:"PageNumber"`
	PageSize   int    `json:"PageSize"`
	TotalCount int    `json:"TotalCount"`
	Accounts   struct {
		Account []accountItem `json:"Account"`
	} `json:"Accounts"`
}

func (s *Server) list(p url.Values) (any, *gateway.Error) {
	page, size := 1, 10
	if v := p.Get("PageNumber"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, invalid("PageNumber")
		}
		page = n
	}
	if v := p.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, invalid("PageSize")
		}
		size = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Pages[page]++
	if f := s.failPage[page]; f != nil && f.left > 0 {
		f.left--
		return nil, injected(f.code)
	}
	b := &listBody{PageNumber: page, PageSize: size, TotalCount: len(s.accounts)}
	b.Accounts.Account = []accountItem{}
	from := (page - 1) * size
	for i := from; i < len(s.accounts) && i < from+size; i++ {
		a := s.accounts[i]
		b.Accounts.Account = append(b.Accounts.Account, accountItem{
			AccountId: a.AccountId, DisplayName: a.DisplayName, FolderId: a.FolderId, JoinMethod: a.JoinMethod,
			JoinTime: "2024-01-02T00:00:00.000Z", ModifyTime: "2024-01-02T00:00:00.000Z",
			ResourceDirectoryId: s.opts.DirectoryID, Status: a.Status, Type: a.Type,
		})
	}
	return b, nil
}

func invalid(name string) *gateway.Error {
	return &gateway.Error{Status: 400, Code: "InvalidParameter", Message: "The specified parameter " + name + " is not valid."}
}

func injected(code string) *gateway.Error {
	switch code {
	case "InternalError":
		return &gateway.Error{Status: 500, Code: code, Message: "The request processing has failed due to some unknown error, exception or failure."}
	case "Throttling.User":
		return &gateway.Error{Status: 400, Code: code, Message: "Request was denied due to user flow control."}
	default:
		return &gateway.Error{Status: 503, Code: "ServiceUnavailable", Message: "The request has failed due to a temporary failure of the server."}
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
