// Package assume enters member accounts: STS AssumeRole into the member role
// (acs:ram::<uid>:role/<name>) with the invocation's own credentials, one
// call per member per scan — tokens are cached per account, refreshed when
// they near their expiry, and concurrent requests for one account share one
// call — paced under the AssumeRole quota and retried when throttled.
// Nothing here logs; errors name the role and the answer, never a secret.
package assume

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	sts "github.com/alibabacloud-go/sts-20150401/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/openapi"
	"vpnauthz/internal/retry"
)

const (
	// DefaultRoleName is MEMBER_ROLE_NAME's default.
	DefaultRoleName = "vpnauthz-auditor"
	// DefaultRate keeps AssumeRole under its quota of 100 calls a second per
	// account (help.aliyun.com ram "api-sts-2015-04-01-quota").
	DefaultRate = 90
	// DefaultRefreshBefore is how long before its expiry a token is replaced.
	DefaultRefreshBefore = 5 * time.Minute

	// MinDuration and MaxDuration bound DurationSeconds (a role's
	// MaxSessionDuration defaults to the maximum).
	MinDuration = 900 * time.Second
	MaxDuration = 3600 * time.Second

	sessionPrefix = "vpnauthz-"
	// maxSessionName keeps to the older documented bound of 32 characters
	// (help document 42775); the v2.0.4 SDK doc allows 64.
	maxSessionName = 32
)

// Options configure a Cache.
type Options struct {
	// Endpoint is STS_ENDPOINT for Region; zero: the SDK's endpoint for Region.
	Endpoint endpoint.Endpoint
	Region   string
	// Base are the invocation's own credentials, which make the calls.
	Base cloudapi.Credentials
	// RoleName is MEMBER_ROLE_NAME (default DefaultRoleName); ExternalID is
	// MEMBER_ROLE_EXTERNAL_ID ("" sends none).
	RoleName, ExternalID string
	// ScanID names the session: RoleSessionName is SessionName(ScanID).
	ScanID string
	// Deadline is when the scan must end: tokens are asked to last until
	// then (DurationSeconds within 900..3600). Zero asks for the maximum.
	Deadline time.Time
	// RefreshBefore: a cached token this close to its expiry is replaced
	// (default DefaultRefreshBefore).
	RefreshBefore time.Duration
	// Rate is AssumeRole calls a second (default DefaultRate); Burst default 1.
	Rate  float64
	Burst int
	// Retry bounds the attempts and pauses of one AssumeRole; its zero
	// fields are cloudapi's defaults. Each attempt waits for the rate
	// limiter first.
	Retry      retry.Policy
	Now        func() time.Time // default time.Now
	HTTPClient *http.Client     // default: one of the cache's own
}

// Token is a member account's temporary credentials.
type Token struct {
	Account     string
	Credentials cloudapi.Credentials
	Expiration  time.Time
}

// Error is a member that could not be entered.
type Error struct {
	Account, RoleArn string
	Err              error
}

func (e *Error) Error() string {
	return fmt.Sprintf("assume role %s: %v", e.RoleArn, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Denied reports whether err is the member refusing the role: the role is
// missing, or its trust policy (principal or ExternalId) does not admit the
// caller. Retrying does not help.
func Denied(err error) bool {
	var ae *cloudapi.APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.Code == "NoPermission" || ae.Code == "EntityNotExist.Role" || strings.HasPrefix(ae.Code, "AuthenticationFail.NoPermission")
}

// Cache hands out member credentials for one scan.
type Cache struct {
	opts    Options
	ep      endpoint.Endpoint
	hc      *http.Client
	limiter *rate.Limiter
	session string
	group   singleflight.Group

	mu     sync.Mutex
	tokens map[string]Token
	calls  int
}

// RoleArn is acs:ram::<account>:role/<name>.
func RoleArn(account, roleName string) string {
	return "acs:ram::" + account + ":role/" + roleName
}

var (
	accountPattern  = regexp.MustCompile(`^[0-9]{1,20}$`)
	roleNamePattern = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)
	externalPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	sessionUnsafe   = regexp.MustCompile(`[^A-Za-z0-9.@_-]`)
)

// ValidateRoleName checks a MEMBER_ROLE_NAME value.
func ValidateRoleName(name string) error {
	if !roleNamePattern.MatchString(name) {
		return fmt.Errorf("MEMBER_ROLE_NAME %q: a RAM role name is 1 to 64 letters, digits, '.' or '-'", name)
	}
	return nil
}

// ValidateExternalID checks a MEMBER_ROLE_EXTERNAL_ID value ("" is none).
// The value is not echoed: it is a shared secret of sorts.
func ValidateExternalID(id string) error {
	if id != "" && (len(id) < 2 || len(id) > 1224 || !externalPattern.MatchString(id)) {
		return fmt.Errorf("MEMBER_ROLE_EXTERNAL_ID: want 2 to 1224 characters of letters, digits and = , . @ : / - _ (got %d characters)", len(id))
	}
	return nil
}

// SessionName is the RoleSessionName of a scan: "vpnauthz-" and as much of
// the scan id as fits, with characters STS refuses replaced by '-'.
func SessionName(scanID string) string {
	s := sessionPrefix + sessionUnsafe.ReplaceAllString(scanID, "-")
	if len(s) > maxSessionName {
		s = s[:maxSessionName]
	}
	if s == sessionPrefix {
		s += "scan"
	}
	return s
}

// Duration is the DurationSeconds that covers now..deadline (with a minute
// to spare), within MinDuration..MaxDuration.
func Duration(now, deadline time.Time) time.Duration {
	if deadline.IsZero() {
		return MaxDuration
	}
	d := deadline.Sub(now) + time.Minute
	d = (d + time.Second - 1).Truncate(time.Second)
	return min(max(d, MinDuration), MaxDuration)
}

// New checks the options; no call is made.
func New(opts Options) (*Cache, error) {
	ep := opts.Endpoint
	if err := checkEndpoint("STS_ENDPOINT", ep); err != nil {
		return nil, err
	}
	if opts.RoleName == "" {
		opts.RoleName = DefaultRoleName
	}
	if err := ValidateRoleName(opts.RoleName); err != nil {
		return nil, err
	}
	if err := ValidateExternalID(opts.ExternalID); err != nil {
		return nil, err
	}
	if opts.Base.AccessKeyID == "" || opts.Base.AccessKeySecret == "" {
		return nil, errors.New("assume: no base credentials to call STS with")
	}
	if ep.Host == "" && opts.Region == "" {
		return nil, errors.New("assume: neither STS_ENDPOINT nor a region to find the STS endpoint")
	}
	if opts.RefreshBefore <= 0 {
		opts.RefreshBefore = DefaultRefreshBefore
	}
	if opts.Rate <= 0 {
		opts.Rate = DefaultRate
	}
	if opts.Burst < 1 {
		opts.Burst = 1
	}
	opts.Retry = opts.Retry.Defaults()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = openapi.NewHTTPClient(ep, cloudapi.DefaultCallTimeout)
	}
	return &Cache{
		opts:    opts,
		ep:      ep,
		hc:      hc,
		limiter: rate.NewLimiter(rate.Limit(opts.Rate), opts.Burst),
		session: SessionName(opts.ScanID),
		tokens:  map[string]Token{},
	}, nil
}

// Calls is the number of AssumeRole calls made (retries included).
func (c *Cache) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// Credentials returns the account's token: the cached one while it is not
// near its expiry, else a new one. Concurrent requests for one account make
// one call.
func (c *Cache) Credentials(ctx context.Context, account string) (Token, error) {
	if !accountPattern.MatchString(account) {
		return Token{}, fmt.Errorf("assume: %q is not an account id", account)
	}
	for {
		if t, ok := c.cached(account); ok {
			return t, nil
		}
		ch := c.group.DoChan(account, func() (any, error) {
			if t, ok := c.cached(account); ok {
				return t, nil
			}
			t, err := c.assume(ctx, account)
			if err != nil {
				return Token{}, err
			}
			c.mu.Lock()
			c.tokens[account] = t
			c.mu.Unlock()
			return t, nil
		})
		select {
		case <-ctx.Done():
			return Token{}, &Error{Account: account, RoleArn: RoleArn(account, c.opts.RoleName), Err: ctx.Err()}
		case res := <-ch:
			if res.Err != nil {
				// The caller that made the shared call gave up: this one
				// has time left, so it tries itself.
				if outOfTime(res.Err) && ctx.Err() == nil {
					continue
				}
				return Token{}, res.Err
			}
			return res.Val.(Token), nil
		}
	}
}

// outOfTime reports whether err is a call stopped by its caller's time
// rather than by STS.
func outOfTime(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, retry.ErrNoTime)
}

func (c *Cache) cached(account string) (Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[account]
	if !ok || !c.opts.Now().Before(t.Expiration.Add(-c.opts.RefreshBefore)) {
		return Token{}, false
	}
	return t, true
}

func (c *Cache) assume(ctx context.Context, account string) (Token, error) {
	arn := RoleArn(account, c.opts.RoleName)
	var t Token
	err := retry.Do(ctx, c.opts.Retry, retry.Hooks{Pace: c.limiter.Wait}, func(ctx context.Context) error {
		var err error
		t, err = c.call(ctx, account, arn)
		return err
	})
	if err != nil {
		return Token{}, &Error{Account: account, RoleArn: arn, Err: err}
	}
	return t, nil
}

func (c *Cache) call(ctx context.Context, account, arn string) (Token, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	client, err := sts.NewClient(openapi.Config(ctx, c.opts.Base, c.ep, c.opts.Region, c.hc))
	if err != nil {
		return Token{}, fmt.Errorf("sts client: %w", cloudapi.Local(err))
	}
	req := &sts.AssumeRoleRequest{
		RoleArn:         dara.String(arn),
		RoleSessionName: dara.String(c.session),
		DurationSeconds: dara.Int64(int64(Duration(c.opts.Now(), c.opts.Deadline) / time.Second)),
	}
	if c.opts.ExternalID != "" {
		req.ExternalId = dara.String(c.opts.ExternalID)
	}
	resp, err := client.AssumeRoleWithOptions(req, &dara.RuntimeOptions{})
	if err != nil {
		return Token{}, openapi.MapError(ctx, "AssumeRole", err)
	}
	cr := resp.Body.Credentials
	if cr == nil || dara.StringValue(cr.AccessKeyId) == "" || dara.StringValue(cr.AccessKeySecret) == "" || dara.StringValue(cr.SecurityToken) == "" {
		return Token{}, fmt.Errorf("AssumeRole: %w", &cloudapi.DecodeError{HTTPStatus: http.StatusOK, Err: errors.New("the answer holds no credentials")})
	}
	exp, err := time.Parse(time.RFC3339, dara.StringValue(cr.Expiration))
	if err != nil {
		return Token{}, fmt.Errorf("AssumeRole: Expiration %q: %w", dara.StringValue(cr.Expiration), &cloudapi.DecodeError{HTTPStatus: http.StatusOK, Err: err})
	}
	return Token{
		Account: account,
		Credentials: cloudapi.Credentials{
			AccessKeyID:     dara.StringValue(cr.AccessKeyId),
			AccessKeySecret: dara.StringValue(cr.AccessKeySecret),
			SecurityToken:   dara.StringValue(cr.SecurityToken),
		},
		Expiration: exp,
	}, nil
}

// Identity is who a set of credentials is (GetCallerIdentity).
type Identity struct {
	AccountID, Arn, IdentityType, PrincipalID string
}

// CallerIdentity asks STS who creds are: the function's own account for
// --live checks.
func CallerIdentity(ctx context.Context, ep endpoint.Endpoint, region string, creds cloudapi.Credentials, hc *http.Client) (Identity, error) {
	if err := checkEndpoint("STS_ENDPOINT", ep); err != nil {
		return Identity{}, err
	}
	if hc == nil {
		hc = openapi.NewHTTPClient(ep, cloudapi.DefaultCallTimeout)
	}
	client, err := sts.NewClient(openapi.Config(ctx, creds, ep, region, hc))
	if err != nil {
		return Identity{}, fmt.Errorf("sts client: %w", err)
	}
	resp, err := client.GetCallerIdentityWithOptions(&dara.RuntimeOptions{})
	if err != nil {
		return Identity{}, openapi.MapError(ctx, "GetCallerIdentity", err)
	}
	b := resp.Body
	return Identity{
		AccountID:    dara.StringValue(b.AccountId),
		Arn:          dara.StringValue(b.Arn),
		IdentityType: dara.StringValue(b.IdentityType),
		PrincipalID:  dara.StringValue(b.PrincipalId),
	}, nil
}

// checkEndpoint refuses plain HTTP to anything but a loopback emulator.
func checkEndpoint(setting string, ep endpoint.Endpoint) error {
	if !ep.IsZero() && ep.Scheme != "https" && !ep.Loopback {
		return fmt.Errorf("%s %s: plain http is only for a loopback host", setting, ep)
	}
	return nil
}
