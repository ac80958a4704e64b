// Package config reads vpnauthz's configuration from the environment and the
// optional policy file, and rejects every invalid value before any API call.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"vpnauthz/internal/accounts"
	"vpnauthz/internal/assume"
	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	"vpnauthz/internal/fanout"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/statestore"
	"vpnauthz/internal/target"
)

// Config is the validated configuration of the function.
type Config struct {
	Targets         []target.Target // SCAN_TARGETS, duplicates collapsed
	Policy          policy.Policy
	PolicyFile      string            // POLICY_FILE, the path the policy was read from; empty: none
	SLSEndpoint     endpoint.Regional // SLS_ENDPOINT; zero: https://REGION.log.aliyuncs.com for the function's region (see SLSEndpointFor)
	SLSProject      string
	SLSLogstore     string
	VPCEndpoint     endpoint.Regional // VPC_ENDPOINT; zero: the SDK's regional endpoint
	VPCAPIRate      float64
	ScanConcurrency int
	LogLevel        slog.Level
	HTTPAuthToken   string `json:"-"` // never encoded: JSON log handlers marshal nested values

	// Overrides of the endpoints of the organisation and lifecycle features
	// (PRODUCT.md, Round 2): STS AssumeRole and GetCallerIdentity,
	// ResourceManager ListAccounts, FC InvokeFunction for fan-out, and the
	// Tablestore state store. Parsed and checked like VPC_ENDPOINT (per
	// region or for all; loopback http:// for emulators); the zero value
	// keeps each SDK's own endpoint.
	STSEndpoint             endpoint.Regional
	ResourceManagerEndpoint endpoint.Regional
	FCEndpoint              endpoint.Regional
	TablestoreEndpoint      endpoint.Regional

	// The organisation (PRODUCT.md, Round 2 "Organisations" and "Fan-out").
	Accounts          accounts.Spec // ACCOUNTS; Mode Own when unset
	AccountsExclude   []string      // ACCOUNTS_EXCLUDE
	MemberRoleName    string        // MEMBER_ROLE_NAME; default assume.DefaultRoleName
	TrustOrganization bool          // TRUST_ORGANIZATION
	// MemberRoleExternalID is MEMBER_ROLE_EXTERNAL_ID. It is not a secret
	// in the strict sense, but it is what keeps another party from making
	// the member roles work for them: logs only say whether it is set.
	MemberRoleExternalID string `json:"-"`
	// FanoutAccountsPerInvocation is FANOUT_ACCOUNTS_PER_INVOCATION: a
	// timer scan of more accounts coordinates workers instead of scanning.
	FanoutAccountsPerInvocation int

	// StateStore is STATE_STORE; the zero Location is stateless.
	StateStore statestore.Location
}

// NeedsDirectory reports whether a scan needs the Resource Directory's
// listing: for ACCOUNTS=resource-directory and for TRUST_ORGANIZATION.
func (c *Config) NeedsDirectory() bool {
	return c.Accounts.Mode == accounts.Directory || c.TrustOrganization
}

// Organisation reports whether scans may reach beyond the function's own
// account or trust by the directory: anything but the defaults of ACCOUNTS
// and TRUST_ORGANIZATION.
func (c *Config) Organisation() bool {
	return c.Accounts.Mode != accounts.Own || c.TrustOrganization
}

// Names of the environment variables.
const (
	EnvScanTargets             = "SCAN_TARGETS"
	EnvTrustedAccountIDs       = "TRUSTED_ACCOUNT_IDS"
	EnvTrustedCENIDs           = "TRUSTED_CEN_IDS"
	EnvMaxAuthorizationAgeDays = "MAX_AUTHORIZATION_AGE_DAYS"
	EnvPolicyFile              = "POLICY_FILE"
	EnvSLSEndpoint             = "SLS_ENDPOINT"
	EnvSLSProject              = "SLS_PROJECT"
	EnvSLSLogstore             = "SLS_LOGSTORE"
	EnvVPCEndpoint             = "VPC_ENDPOINT"
	EnvVPCAPIRate              = "VPC_API_RATE"
	EnvScanConcurrency         = "SCAN_CONCURRENCY"
	EnvLogLevel                = "LOG_LEVEL"
	EnvHTTPAuthToken           = "HTTP_AUTH_TOKEN"

	// Endpoint overrides of the organisation and lifecycle features.
	EnvSTSEndpoint             = "STS_ENDPOINT"
	EnvResourceManagerEndpoint = "RESOURCEMANAGER_ENDPOINT"
	EnvFCEndpoint              = "FC_ENDPOINT"
	EnvTablestoreEndpoint      = "TABLESTORE_ENDPOINT"

	// The organisation and the state store.
	EnvAccounts                    = "ACCOUNTS"
	EnvAccountsExclude             = "ACCOUNTS_EXCLUDE"
	EnvMemberRoleName              = "MEMBER_ROLE_NAME"
	EnvMemberRoleExternalID        = "MEMBER_ROLE_EXTERNAL_ID"
	EnvTrustOrganization           = "TRUST_ORGANIZATION"
	EnvFanoutAccountsPerInvocation = "FANOUT_ACCOUNTS_PER_INVOCATION"
	EnvStateStore                  = statestore.EnvStateStore
)

// Defaults of the variables that have one.
const (
	DefaultVPCAPIRate      = cloudapi.DefaultRate
	DefaultScanConcurrency = cloudapi.DefaultConcurrency
	DefaultLogLevel        = slog.LevelInfo

	DefaultMemberRoleName              = assume.DefaultRoleName
	DefaultFanoutAccountsPerInvocation = fanout.DefaultAccountsPerInvocation
)

// Words SLS_ENDPOINT takes besides endpoints: the Log Service endpoint of
// the function's region on the Internet (the default) or on Alibaba Cloud's
// internal network (for a function whose traffic stays inside the cloud).
const (
	SLSEndpointPublic   = "public"
	SLSEndpointIntranet = "intranet"
)

var (
	slsPublic   = endpoint.MustTemplate("https://" + endpoint.RegionPlaceholder + ".log.aliyuncs.com")
	slsIntranet = endpoint.MustTemplate("https://" + endpoint.RegionPlaceholder + "-intranet.log.aliyuncs.com")
)

// Bounds of the numeric settings.
const (
	MaxAuthorizationAgeDays = 36500
	MaxVPCAPIRate           = 1000
	MaxScanConcurrency      = 256
	// MaxFanoutAccountsPerInvocation keeps a batch's payload far below FC's
	// 128 KB limit for async invocations (a UID is at most 20 digits).
	MaxFanoutAccountsPerInvocation = 1000
)

var (
	accountIDPattern = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
	cenIDPattern     = regexp.MustCompile(`^cen-[a-z0-9]{4,64}$`)
	projectPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	logstorePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`)
)

// Reasons shared by the environment and the policy file.
const (
	reasonAccountID = "account UID must be 1 to 20 decimal digits without a leading zero"
	reasonCENID     = "CEN instance id must look like cen-… (lower-case letters and digits)"
	reasonMaxAge    = "must be a whole number of days from 0 (rule off) to 36500"
)

// Error is one invalid configuration value.
type Error struct {
	Variable string // the environment variable, e.g. SCAN_TARGETS
	Value    string // the bad value or list entry; for POLICY_FILE, the path
	Reason   string
}

func (e *Error) Error() string {
	// The token is a secret: its value must never reach a log or a
	// response; the external id is kept out of them too.
	if e.Value == "" || e.Variable == EnvHTTPAuthToken || e.Variable == EnvMemberRoleExternalID {
		return e.Variable + ": " + e.Reason
	}
	return fmt.Sprintf("%s: %q: %s", e.Variable, e.Value, e.Reason)
}

// Env looks up an environment variable, like os.LookupEnv.
type Env func(key string) (string, bool)

// FromEnviron loads the configuration from the process environment.
func FromEnviron() (*Config, error) {
	return Load(os.LookupEnv, readAtMost)
}

// readAtMost reads a file, but no more than one byte past the policy file's
// size limit: a POLICY_FILE pointing at a device or a huge log is refused as
// too large instead of being read whole at start-up.
func readAtMost(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxPolicyFileSize+1))
}

// Load reads and checks the configuration. A variable set to a non-empty
// value overrides the policy file's value. Every problem is reported at once,
// as *Error values joined with errors.Join, so a user can fix them in one go.
func Load(env Env, readFile func(path string) ([]byte, error)) (*Config, error) {
	l := &loader{env: env}
	c := &Config{
		VPCAPIRate:                  DefaultVPCAPIRate,
		ScanConcurrency:             DefaultScanConcurrency,
		LogLevel:                    DefaultLogLevel,
		MemberRoleName:              DefaultMemberRoleName,
		FanoutAccountsPerInvocation: DefaultFanoutAccountsPerInvocation,
	}

	if path, ok := l.get(EnvPolicyFile); ok {
		c.PolicyFile = path
		c.Policy = l.policyFile(path, readFile)
	}
	if v, ok := l.get(EnvScanTargets); ok {
		c.Targets = l.targets(v)
	}
	if v, ok := l.get(EnvTrustedAccountIDs); ok {
		c.Policy.TrustedAccountIDs = l.list(EnvTrustedAccountIDs, v, accountIDPattern, reasonAccountID)
	}
	if v, ok := l.get(EnvTrustedCENIDs); ok {
		c.Policy.TrustedCENIDs = l.list(EnvTrustedCENIDs, v, cenIDPattern, reasonCENID)
	}
	if v, ok := l.get(EnvMaxAuthorizationAgeDays); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxAuthorizationAgeDays {
			l.fail(EnvMaxAuthorizationAgeDays, v, reasonMaxAge)
		} else {
			c.Policy.MaxAuthorizationAgeDays = n
		}
	}
	if v, ok := l.get(EnvSLSEndpoint); ok {
		switch strings.ToLower(v) {
		case SLSEndpointPublic:
			c.SLSEndpoint = slsPublic
		case SLSEndpointIntranet:
			c.SLSEndpoint = slsIntranet
		default:
			c.SLSEndpoint = l.endpoint(EnvSLSEndpoint, v)
		}
	}
	if v, ok := l.get(EnvSLSProject); ok {
		if l.match(EnvSLSProject, v, projectPattern, "project name must be 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit") {
			c.SLSProject = v
		}
	}
	if v, ok := l.get(EnvSLSLogstore); ok {
		if l.match(EnvSLSLogstore, v, logstorePattern, "logstore name must be 3 to 63 lower-case letters, digits, hyphens and underscores, starting and ending with a letter or digit") {
			c.SLSLogstore = v
		}
	}
	for _, e := range []struct {
		variable string
		to       *endpoint.Regional
	}{
		{EnvVPCEndpoint, &c.VPCEndpoint},
		{EnvSTSEndpoint, &c.STSEndpoint},
		{EnvResourceManagerEndpoint, &c.ResourceManagerEndpoint},
		{EnvFCEndpoint, &c.FCEndpoint},
		{EnvTablestoreEndpoint, &c.TablestoreEndpoint},
	} {
		if v, ok := l.get(e.variable); ok {
			*e.to = l.endpoint(e.variable, v)
		}
	}
	if v, ok := l.get(EnvVPCAPIRate); ok {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(r) || r <= 0 || r > MaxVPCAPIRate {
			l.fail(EnvVPCAPIRate, v, "must be a number of calls per second above 0 and at most 1000")
		} else {
			c.VPCAPIRate = r
		}
	}
	if v, ok := l.get(EnvScanConcurrency); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxScanConcurrency {
			l.fail(EnvScanConcurrency, v, "must be a whole number from 1 to 256")
		} else {
			c.ScanConcurrency = n
		}
	}
	if v, ok := l.get(EnvLogLevel); ok {
		if lvl, ok := logLevels[strings.ToLower(v)]; ok {
			c.LogLevel = lvl
		} else {
			l.fail(EnvLogLevel, v, "must be debug, info, warn or error")
		}
	}
	if v, ok := env(EnvHTTPAuthToken); ok && v != "" {
		// Surrounding white space cannot survive an HTTP header, so it is
		// dropped; a token of only white space is a mistake, not "no token".
		if t := strings.TrimSpace(v); t == "" {
			l.fail(EnvHTTPAuthToken, "", "must not be only white space")
		} else {
			c.HTTPAuthToken = t
		}
	}

	l.organisation(c)

	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return c, nil
}

// organisation reads the variables of organisation scans and the state
// store. The parsers belong to the packages that use the values; their
// messages are cut to the reason, since Error names the variable itself.
func (l *loader) organisation(c *Config) {
	if v, ok := l.get(EnvAccounts); ok {
		spec, err := accounts.ParseAccounts(v)
		if err != nil {
			l.failWith(EnvAccounts, "", err)
		} else {
			for _, id := range spec.IDs {
				l.match(EnvAccounts, id, accountIDPattern, reasonAccountID)
			}
			c.Accounts = spec
		}
	}
	if v, ok := l.get(EnvAccountsExclude); ok {
		ids, err := accounts.ParseExclude(v)
		if err != nil {
			l.failWith(EnvAccountsExclude, "", err)
		} else {
			for _, id := range ids {
				l.match(EnvAccountsExclude, id, accountIDPattern, reasonAccountID)
			}
			c.AccountsExclude = ids
		}
	}
	if v, ok := l.get(EnvMemberRoleName); ok {
		if err := assume.ValidateRoleName(v); err != nil {
			l.failWith(EnvMemberRoleName, v, err)
		} else {
			c.MemberRoleName = v
		}
	}
	if v, ok := l.get(EnvMemberRoleExternalID); ok {
		if err := assume.ValidateExternalID(v); err != nil {
			l.failWith(EnvMemberRoleExternalID, "", err)
		} else {
			c.MemberRoleExternalID = v
		}
	}
	if v, ok := l.get(EnvTrustOrganization); ok {
		b, err := accounts.ParseTrustOrganization(v)
		if err != nil {
			l.fail(EnvTrustOrganization, v, "must be true or false")
		} else {
			c.TrustOrganization = b
		}
	}
	if v, ok := l.get(EnvFanoutAccountsPerInvocation); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxFanoutAccountsPerInvocation {
			l.fail(EnvFanoutAccountsPerInvocation, v, "must be a whole number of accounts from 1 to 1000")
		} else {
			c.FanoutAccountsPerInvocation = n
		}
	}
	if v, ok := l.get(EnvStateStore); ok {
		loc, err := statestore.ParseStateStore(v)
		switch {
		case err != nil && strings.Contains(v, "@"):
			// The parser does not echo a value holding a user or password.
			l.failWith(EnvStateStore, "", err)
		case err != nil:
			l.failWith(EnvStateStore, v, err)
		default:
			c.StateStore = loc
		}
	}
}

// failWith records another package's error for variable: its message
// without the variable's name and quoted value, which Error adds itself.
func (l *loader) failWith(variable, value string, err error) {
	msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), variable))
	if value != "" {
		if q := strconv.Quote(value); strings.HasPrefix(msg, q) {
			msg = strings.TrimSpace(strings.TrimPrefix(msg, q))
		}
	}
	msg = strings.TrimSpace(strings.TrimPrefix(msg, ":"))
	l.fail(variable, value, msg)
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// loader collects every problem instead of stopping at the first.
type loader struct {
	env  Env
	errs []error
}

// get returns a variable's value without surrounding white space; empty
// counts as unset.
func (l *loader) get(key string) (string, bool) {
	v, _ := l.env(key)
	v = strings.TrimSpace(v)
	return v, v != ""
}

func (l *loader) fail(variable, value, reason string) {
	l.errs = append(l.errs, &Error{Variable: variable, Value: value, Reason: reason})
}

func (l *loader) match(variable, value string, re *regexp.Regexp, reason string) bool {
	if !re.MatchString(value) {
		l.fail(variable, value, reason)
		return false
	}
	return true
}

func (l *loader) targets(v string) []target.Target {
	ts, err := target.ParseList(v)
	if err != nil {
		for _, e := range unjoin(err) {
			var te *target.Error
			if errors.As(e, &te) {
				l.fail(EnvScanTargets, te.Entry, te.Reason)
			} else {
				l.fail(EnvScanTargets, v, e.Error())
			}
		}
		return nil
	}
	return target.Collapse(ts)
}

// list parses a comma and/or white space separated list, checking every
// entry and dropping repeats.
func (l *loader) list(variable, v string, re *regexp.Regexp, reason string) []string {
	var out []string
	for _, e := range splitList(v) {
		if l.match(variable, e, re, reason) && !contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// endpoint reads an endpoint variable: one endpoint, a {region} template,
// or REGION=endpoint pairs (see endpoint.Regional). The error names the bad
// entry, never a user:password.
func (l *loader) endpoint(variable, v string) endpoint.Regional {
	r, err := endpoint.ParseRegional(v)
	if err != nil {
		var e *endpoint.Error
		if errors.As(err, &e) {
			l.fail(variable, e.Value, e.Reason)
		} else {
			l.fail(variable, "", err.Error())
		}
	}
	return r
}

// maxPolicyFileSize keeps a mistaken path (a log, a binary) from being
// parsed at length.
const maxPolicyFileSize = 1 << 20

func (l *loader) policyFile(path string, readFile func(string) ([]byte, error)) policy.Policy {
	data, err := readFile(path)
	if err != nil {
		// The path is already in the message: keep only the cause.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.fail(EnvPolicyFile, path, "cannot read the policy file: "+err.Error())
		return policy.Policy{}
	}
	p, err := ParsePolicy(data)
	if err != nil {
		for _, e := range unjoin(err) {
			l.fail(EnvPolicyFile, path, e.Error())
		}
		return policy.Policy{}
	}
	return p
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// SLSEndpointFor is the SLS endpoint for findings of a function in region:
// SLS_ENDPOINT's for the region when it has one, else the region's public
// endpoint. It is the zero Endpoint for a region that is not a valid region
// id, so a bad region cannot form a host name elsewhere.
func (c *Config) SLSEndpointFor(region string) endpoint.Endpoint {
	if e, err := c.SLSEndpoint.For(region); err == nil && !e.IsZero() {
		return e
	}
	if !target.ValidRegion(region) {
		return endpoint.Endpoint{}
	}
	e, _ := slsPublic.For(region)
	return e
}

// DeliveryConfigured reports whether findings have somewhere to go: nil when
// SLS_PROJECT and SLS_LOGSTORE are set, else an *Error naming what is missing.
func (c *Config) DeliveryConfigured() error {
	var missing []string
	if c.SLSProject == "" {
		missing = append(missing, EnvSLSProject)
	}
	if c.SLSLogstore == "" {
		missing = append(missing, EnvSLSLogstore)
	}
	if len(missing) == 0 {
		return nil
	}
	return &Error{
		Variable: strings.Join(missing, ", "),
		Reason:   "must be set to deliver findings to Log Service",
	}
}

// String describes the configuration for logs; the bearer token is only
// said to be set or not.
func (c Config) String() string {
	var b strings.Builder
	for i, a := range c.attrs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", a.Key, a.Value)
	}
	return b.String()
}

// GoString keeps %#v from printing the token.
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }

// Format keeps every other verb (%d, %x, %+v, ...) from printing the fields
// one by one, token included.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

// LogValue keeps structured logs from printing the token.
func (c Config) LogValue() slog.Value { return slog.GroupValue(c.attrs()...) }

func (c Config) attrs() []slog.Attr {
	targets := make([]string, len(c.Targets))
	for i, t := range c.Targets {
		targets[i] = t.String()
	}
	token := "unset"
	if c.HTTPAuthToken != "" {
		token = "set"
	}
	externalID := "unset"
	if c.MemberRoleExternalID != "" {
		externalID = "set"
	}
	return []slog.Attr{
		slog.String("scan_targets", strings.Join(targets, ",")),
		slog.String("policy_file", c.PolicyFile),
		slog.String("trusted_account_ids", strings.Join(c.Policy.TrustedAccountIDs, ",")),
		slog.String("trusted_cen_ids", strings.Join(c.Policy.TrustedCENIDs, ",")),
		slog.Int("max_authorization_age_days", c.Policy.MaxAuthorizationAgeDays),
		slog.Int("exceptions", len(c.Policy.Exceptions)),
		slog.String("sls_endpoint", c.SLSEndpoint.String()),
		slog.String("sls_project", c.SLSProject),
		slog.String("sls_logstore", c.SLSLogstore),
		slog.String("vpc_endpoint", c.VPCEndpoint.String()),
		slog.String("sts_endpoint", c.STSEndpoint.String()),
		slog.String("resourcemanager_endpoint", c.ResourceManagerEndpoint.String()),
		slog.String("fc_endpoint", c.FCEndpoint.String()),
		slog.String("tablestore_endpoint", c.TablestoreEndpoint.String()),
		slog.Float64("vpc_api_rate", c.VPCAPIRate),
		slog.Int("scan_concurrency", c.ScanConcurrency),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("http_auth_token", token),
		slog.String("accounts", c.accountsString()),
		slog.String("accounts_exclude", strings.Join(c.AccountsExclude, ",")),
		slog.String("member_role_name", c.MemberRoleName),
		slog.String("member_role_external_id", externalID),
		slog.Bool("trust_organization", c.TrustOrganization),
		slog.Int("fanout_accounts_per_invocation", c.FanoutAccountsPerInvocation),
		slog.String("state_store", stateStoreString(c.StateStore)),
	}
}

func (c Config) accountsString() string {
	if c.Accounts.Mode == accounts.List {
		return strings.Join(c.Accounts.IDs, ",")
	}
	return c.Accounts.Mode.String()
}

func stateStoreString(l statestore.Location) string {
	if l.IsZero() {
		return ""
	}
	return l.String()
}
