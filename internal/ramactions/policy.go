package ramactions

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Config is what the policy depends on: where things are, and which
// features are configured. Field comments name the variable each comes from
// in ConfigFromEnv.
type Config struct {
	AccountID string   // ACCOUNT_ID argument: the function's account
	Regions   []string // REGION arguments: the scanned regions; none = every region

	SLSRegion        string // SLS_REGION argument
	SLSProject       string // SLS_PROJECT argument
	SLSLogstore      string // SLS_LOGSTORE argument: the findings
	FunctionLogstore string // VPNAUTHZ_FUNCTION_LOGSTORE: the function's own log

	FunctionRegion string // VPNAUTHZ_REGION, default SLS_REGION
	FunctionName   string // VPNAUTHZ_FUNCTION_NAME, default vpnauthz

	FailureDestination string // VPNAUTHZ_FAILURE_DESTINATION

	Accounts            string   // ACCOUNTS
	AccountsExclude     []string // ACCOUNTS_EXCLUDE
	MemberRoleName      string   // MEMBER_ROLE_NAME, default vpnauthz-auditor
	FanoutPerInvocation int      // FANOUT_ACCOUNTS_PER_INVOCATION, default 50

	StateStore  string // STATE_STORE: tablestore://INSTANCE/TABLE
	StateRegion string // VPNAUTHZ_STATE_REGION, default the function's region

	TrailProject  string // TRAIL_PROJECT
	TrailLogstore string // TRAIL_LOGSTORE, default actiontrail_TRAIL_NAME
	TrailRegion   string // the function's region: a Log Service trigger reads a project of its own region
}

// Defaults of the settings ConfigFromEnv fills in.
const (
	DefaultFunctionName     = "vpnauthz"
	DefaultFunctionLogstore = "vpnauthz-function-logs"
	DefaultMemberRoleName   = "vpnauthz-auditor"
	DefaultFanout           = 50
	DefaultTrailName        = "vpnauthz-trail"
	// ResourceDirectory is the ACCOUNTS value meaning every member.
	AccountsResourceDirectory = "resource-directory"
)

var (
	reAccount  = regexp.MustCompile(`^[0-9]{1,20}$`)
	reRegion   = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+){1,4}$`)
	reProject  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	reLogstore = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`)
	reFunction = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
	reRole     = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	reOTSName  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,254}$`)
	// Failure destinations FC accepts and this renderer knows how to grant.
	reMNSDest = regexp.MustCompile(`^acs:mns:([a-z0-9-]+):([0-9]{1,20}):/(queues|topics)/([A-Za-z0-9-]{1,256})/messages$`)
	reFCDest  = regexp.MustCompile(`^acs:fc:([a-z0-9-]+):([0-9]{1,20}):functions/([A-Za-z_][A-Za-z0-9_-]{0,63})$`)
)

// ConfigFromEnv builds a Config from the script's arguments
// (ACCOUNT_ID SLS_REGION SLS_PROJECT SLS_LOGSTORE [REGION ...]) and the
// deployment's environment, filling in the defaults.
func ConfigFromEnv(args []string, getenv func(string) string) (Config, error) {
	if len(args) < 4 {
		return Config{}, errors.New("need ACCOUNT_ID SLS_REGION SLS_PROJECT SLS_LOGSTORE [REGION ...]")
	}
	or := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		AccountID:           args[0],
		SLSRegion:           args[1],
		SLSProject:          args[2],
		SLSLogstore:         args[3],
		Regions:             args[4:],
		FunctionLogstore:    or("VPNAUTHZ_FUNCTION_LOGSTORE", DefaultFunctionLogstore),
		FunctionRegion:      or("VPNAUTHZ_REGION", args[1]),
		FunctionName:        or("VPNAUTHZ_FUNCTION_NAME", DefaultFunctionName),
		FailureDestination:  or("VPNAUTHZ_FAILURE_DESTINATION", ""),
		Accounts:            or("ACCOUNTS", ""),
		AccountsExclude:     strings.FieldsFunc(getenv("ACCOUNTS_EXCLUDE"), isListSep),
		MemberRoleName:      or("MEMBER_ROLE_NAME", DefaultMemberRoleName),
		FanoutPerInvocation: DefaultFanout,
		StateStore:          or("STATE_STORE", ""),
		TrailProject:        or("TRAIL_PROJECT", ""),
	}
	c.StateRegion = or("VPNAUTHZ_STATE_REGION", c.FunctionRegion)
	c.TrailRegion = c.FunctionRegion
	if c.TrailProject != "" {
		c.TrailLogstore = or("TRAIL_LOGSTORE", "actiontrail_"+or("TRAIL_NAME", DefaultTrailName))
	} else if v := or("TRAIL_LOGSTORE", ""); v != "" {
		return Config{}, fmt.Errorf("TRAIL_LOGSTORE=%s is set without TRAIL_PROJECT", v)
	}
	if v := or("FANOUT_ACCOUNTS_PER_INVOCATION", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("FANOUT_ACCOUNTS_PER_INVOCATION=%q: want a whole number of at least 1", v)
		}
		c.FanoutPerInvocation = n
	}
	return c, nil
}

func isListSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }

// memberAccounts returns the accounts of an ACCOUNTS list, without the
// excluded ones; rd is true for resource-directory.
func (c Config) memberAccounts() (uids []string, rd bool, err error) {
	if c.Accounts == AccountsResourceDirectory {
		return nil, true, nil
	}
	for _, u := range strings.FieldsFunc(c.Accounts, isListSep) {
		if !reAccount.MatchString(u) {
			return nil, false, fmt.Errorf("ACCOUNTS: %q is neither an account UID nor %q", u, AccountsResourceDirectory)
		}
		if !slices.Contains(c.AccountsExclude, u) && !slices.Contains(uids, u) {
			uids = append(uids, u)
		}
	}
	return uids, false, nil
}

// EnabledFeatures says which features the configuration turns on.
func (c Config) EnabledFeatures() ([]Feature, error) {
	fs := []Feature{Scan, Findings}
	if c.FailureDestination != "" {
		fs = append(fs, FailureDestination)
	}
	uids, rd, err := c.memberAccounts()
	if err != nil {
		return nil, err
	}
	others := slices.ContainsFunc(uids, func(u string) bool { return u != c.AccountID })
	if rd || others {
		fs = append(fs, MemberAccounts)
	}
	if rd {
		fs = append(fs, ResourceDirectory)
	}
	// A directory can grow past any threshold between deployments; a list
	// fans out only when it is longer than one invocation takes.
	if rd || len(uids) > c.FanoutPerInvocation {
		fs = append(fs, FanOut)
	}
	if c.StateStore != "" {
		fs = append(fs, State)
	}
	if c.TrailProject != "" {
		fs = append(fs, Trail)
	}
	return fs, nil
}

// Document is a RAM policy document.
type Document struct {
	Version   string
	Statement []Statement
}

// Statement is one Allow statement.
type Statement struct {
	Sid      string
	Effect   string
	Action   []string
	Resource []string
}

// JSON renders the document, indented, with a final newline.
func (d Document) JSON() []byte {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		panic(err) // strings and slices only: cannot fail
	}
	return append(b, '\n')
}

// Actions returns the distinct actions of the document, sorted.
func (d Document) Actions() []string {
	var out []string
	for _, s := range d.Statement {
		out = append(out, s.Action...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// FunctionPolicy renders the function role's policy: the Function and
// Platform actions of the configured features, each on exactly the
// resources it needs.
func FunctionPolicy(c Config) (Document, error) {
	if err := c.validate(); err != nil {
		return Document{}, err
	}
	fs, err := c.EnabledFeatures()
	if err != nil {
		return Document{}, err
	}
	var d Document
	d.Version = "1"
	add := func(f Feature, sid, action string, resources ...string) {
		if !slices.ContainsFunc(For([]Feature{f}, Function, Platform), func(a Action) bool { return a.RAM == action }) {
			// Every action granted must be in the table.
			panic(fmt.Sprintf("ramactions: %s is not in the table for %s", action, f))
		}
		d.Statement = append(d.Statement, Statement{Sid: sid, Effect: "Allow", Action: []string{action}, Resource: resources})
	}
	regions := c.Regions
	if len(regions) == 0 {
		regions = []string{"*"}
	}
	each := func(pattern string) []string {
		var out []string
		for _, r := range regions {
			out = append(out, strings.ReplaceAll(pattern, "REGION", r))
		}
		return out
	}
	logstore := func(region, project, logstore string) string {
		return fmt.Sprintf("acs:log:%s:%s:project/%s/logstore/%s", region, c.AccountID, project, logstore)
	}

	for _, f := range fs {
		switch f {
		case Scan:
			add(f, "ListVpnConnectionsOfScannedRegions", "vpc:DescribeVpnConnections", each("acs:vpc:REGION:"+c.AccountID+":*")...)
			add(f, "ReadCrossAccountAuthorizations", "vpc:DescribeVpnCrossAccountAuthorizations", each("acs:vpc:REGION:"+c.AccountID+":vpnconnection/*")...)
		case Findings:
			add(f, "WriteFindingsAndTheFunctionLog", "log:PostLogStoreLogs",
				logstore(c.SLSRegion, c.SLSProject, c.SLSLogstore),
				logstore(c.SLSRegion, c.SLSProject, c.FunctionLogstore))
		case FailureDestination:
			action, _ := destinationAction(c.FailureDestination) // validated
			add(f, "HandFailedInvocationsToTheDestination", action, c.FailureDestination)
		case MemberAccounts:
			uids, rd, _ := c.memberAccounts() // validated
			var roles []string
			if rd {
				roles = []string{"acs:ram::*:role/" + c.MemberRoleName}
			} else {
				for _, u := range uids {
					if u != c.AccountID {
						roles = append(roles, "acs:ram::"+u+":role/"+c.MemberRoleName)
					}
				}
			}
			add(f, "EnterMemberAccounts", "sts:AssumeRole", roles...)
		case ResourceDirectory:
			add(f, "ListDirectoryMembers", "resourcemanager:ListAccounts", "*")
			add(f, "ReadDirectory", "resourcemanager:GetResourceDirectory", "*")
		case FanOut:
			fn := fmt.Sprintf("acs:fc:%s:%s:functions/%s", c.FunctionRegion, c.AccountID, c.FunctionName)
			add(f, "InvokeItselfPerBatch", "fc:InvokeFunction", fn, fn+"/*")
		case State:
			instance, table, _ := ParseStateStore(c.StateStore) // validated
			arn := fmt.Sprintf("acs:ots:%s:%s:instance/%s/table/%s", c.StateRegion, c.AccountID, instance, table)
			add(f, "ReadFindingState", "ots:GetRange", arn)
			add(f, "WriteFindingState", "ots:BatchWriteRow", arn)
			add(f, "CheckFindingStateWrite", "ots:GetRow", arn)
		case Trail:
			add(f, "PullTrailRecords", "log:GetCursorOrData", logstore(c.TrailRegion, c.TrailProject, c.TrailLogstore))
		}
	}
	return d, nil
}

// SetupPolicy renders the policy of whoever runs setup-sls (and setup-state
// when STATE_STORE is set): the Setup actions of the configured features.
func SetupPolicy(c Config) (Document, error) {
	if err := c.validate(); err != nil {
		return Document{}, err
	}
	fs, err := c.EnabledFeatures()
	if err != nil {
		return Document{}, err
	}
	d := Document{Version: "1"}
	for _, a := range For(fs, Setup) {
		var resources []string
		switch a.Feature {
		case Findings:
			resources = []string{fmt.Sprintf("acs:log:%s:%s:project/%s/logstore/%s", c.SLSRegion, c.AccountID, c.SLSProject, c.SLSLogstore)}
			switch a.RAM {
			case "log:CreateDashboard", "log:UpdateDashboard":
				// setup-sls names the dashboard after the findings logstore.
				resources = []string{fmt.Sprintf("acs:log:%s:%s:project/%s/dashboard/%s-*", c.SLSRegion, c.AccountID, c.SLSProject, c.SLSLogstore)}
			case "log:CreateAlert", "log:UpdateAlert":
				// An alert is a job of the project, named after the findings logstore.
				resources = []string{fmt.Sprintf("acs:log:%s:%s:project/%s/job/%s-*", c.SLSRegion, c.AccountID, c.SLSProject, c.SLSLogstore)}
			}
			if a.RAM == "log:CreateLogStore" {
				// deploy.sh also creates the function's log logstore (without our index).
				resources = append(resources, fmt.Sprintf("acs:log:%s:%s:project/%s/logstore/%s", c.SLSRegion, c.AccountID, c.SLSProject, c.FunctionLogstore))
			}
		case State:
			instance, table, _ := ParseStateStore(c.StateStore)
			resources = []string{fmt.Sprintf("acs:ots:%s:%s:instance/%s/table/%s", c.StateRegion, c.AccountID, instance, table)}
		default:
			return Document{}, fmt.Errorf("ramactions: no resource known for setup action %s", a.RAM)
		}
		sid := strings.NewReplacer(":", "", "log", "Log", "ots", "Tablestore").Replace(a.RAM)
		d.Statement = append(d.Statement, Statement{Sid: sid, Effect: "Allow", Action: []string{a.RAM}, Resource: resources})
	}
	return d, nil
}

// ParseStateStore splits tablestore://INSTANCE/TABLE.
func ParseStateStore(s string) (instance, table string, err error) {
	rest, ok := strings.CutPrefix(s, "tablestore://")
	if !ok {
		return "", "", fmt.Errorf("STATE_STORE=%q: want tablestore://INSTANCE/TABLE", s)
	}
	instance, table, ok = strings.Cut(rest, "/")
	if !ok || !reOTSName.MatchString(instance) || !reOTSName.MatchString(table) || len(instance) > 16 {
		return "", "", fmt.Errorf("STATE_STORE=%q: want tablestore://INSTANCE/TABLE with a Tablestore instance and table name", s)
	}
	return instance, table, nil
}

// destinationAction is the action FC needs on a failure destination.
func destinationAction(arn string) (string, error) {
	if m := reMNSDest.FindStringSubmatch(arn); m != nil {
		if m[3] == "queues" {
			return "mns:SendMessage", nil
		}
		return "mns:PublishMessage", nil
	}
	if reFCDest.MatchString(arn) {
		return "fc:InvokeFunction", nil
	}
	return "", fmt.Errorf("VPNAUTHZ_FAILURE_DESTINATION=%q: want an MNS queue (acs:mns:REGION:ACCOUNT:/queues/NAME/messages), "+
		"an MNS topic (acs:mns:REGION:ACCOUNT:/topics/NAME/messages) or a function (acs:fc:REGION:ACCOUNT:functions/NAME)", arn)
}

// validate checks every value that goes into a resource, so that nothing
// can widen the policy (a quote, a wildcard, a path).
func (c Config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(reAccount.MatchString(c.AccountID), "ACCOUNT_ID must be digits: %q", c.AccountID)
	for _, r := range append([]string{c.SLSRegion, c.FunctionRegion}, c.Regions...) {
		check(reRegion.MatchString(r), "not a region id: %q", r)
	}
	check(reProject.MatchString(c.SLSProject), "not an SLS project name: %q", c.SLSProject)
	for _, l := range []string{c.SLSLogstore, c.FunctionLogstore} {
		check(reLogstore.MatchString(l), "not an SLS logstore name: %q", l)
	}
	check(c.SLSLogstore != c.FunctionLogstore, "the findings logstore and the function's log logstore must differ (%q): the function's log keeps FC's own index", c.SLSLogstore)
	check(reFunction.MatchString(c.FunctionName), "VPNAUTHZ_FUNCTION_NAME: not a function name: %q", c.FunctionName)
	if c.FailureDestination != "" {
		_, err := destinationAction(c.FailureDestination)
		check(err == nil, "%v", err)
	}
	check(reRole.MatchString(c.MemberRoleName), "MEMBER_ROLE_NAME: not a RAM role name: %q", c.MemberRoleName)
	for _, u := range c.AccountsExclude {
		check(reAccount.MatchString(u), "ACCOUNTS_EXCLUDE: not an account UID: %q", u)
	}
	if _, _, err := c.memberAccounts(); err != nil {
		errs = append(errs, err)
	}
	check(c.FanoutPerInvocation >= 1, "FANOUT_ACCOUNTS_PER_INVOCATION must be at least 1")
	if c.StateStore != "" {
		_, _, err := ParseStateStore(c.StateStore)
		check(err == nil, "%v", err)
		check(reRegion.MatchString(c.StateRegion), "VPNAUTHZ_STATE_REGION: not a region id: %q", c.StateRegion)
	}
	if c.TrailProject != "" {
		check(reProject.MatchString(c.TrailProject), "TRAIL_PROJECT: not an SLS project name: %q", c.TrailProject)
		check(reLogstore.MatchString(c.TrailLogstore), "TRAIL_LOGSTORE: not an SLS logstore name: %q", c.TrailLogstore)
	}
	return errors.Join(errs...)
}
