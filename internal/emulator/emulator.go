// Package emulator starts the whole emulated cloud vpnauthz talks to — the VPC
// API, Log Service, STS, ResourceManager, Tablestore and, when asked, the FC
// OpenAPI, on loopback, sharing one generated STS credential — in one call,
// and holds the demo inventory, organisation and configuration that the local
// commands and tests run on.
package emulator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcapiemu"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/emulator/rmemu"
	"vpnauthz/internal/emulator/slsemu"
	"vpnauthz/internal/emulator/stsemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/statestore"
)

// Defaults of Options.
const (
	DefaultProject  = "vpnauthz-demo"
	DefaultLogstore = "findings"
	// DefaultRegion is the function's region when the inventory has it.
	DefaultRegion = "cn-hangzhou"
	// DefaultStateInstance and DefaultStateTable are the Tablestore
	// instance and table of the state store (STATE_STORE).
	DefaultStateInstance = otsemu.DefaultInstance
	DefaultStateTable    = "vpnauthz_state"
	// DefaultMemberRole is MEMBER_ROLE_NAME's default, the role every
	// member of an Organization has.
	DefaultMemberRole = "vpnauthz-auditor"
	// DefaultFunctionName is the function the FC OpenAPI knows.
	DefaultFunctionName = "vpnauthz"
)

// Options configure Start.
type Options struct {
	Inventory *vpcemu.Inventory // nil: Demo(time.Now())
	VPCAddr   string            // default "127.0.0.1:0"
	SLSAddr   string            // default "127.0.0.1:0"
	Project   string            // default DefaultProject
	Logstore  string            // default DefaultLogstore

	// Organization are the other accounts of the Resource Directory the
	// inventory's account manages; nil: the directory holds that account
	// alone.
	Organization *Organization
	// StateTable is the state store's table; default DefaultStateTable.
	// Start creates it unless NoStateTable is set (for setup-state to
	// create it).
	StateTable   string
	NoStateTable bool
	// FCRuntime, when set, starts the FC OpenAPI, delivering invocations of
	// FunctionName (default DefaultFunctionName) to that runtime API with
	// the cloud's credential, region and account.
	FCRuntime    *fcemu.Server
	FunctionName string
}

// Organization is a Resource Directory's members, each an account of its
// own on the emulated VPC API with a role the management account may assume.
type Organization struct {
	RoleName   string // default DefaultMemberRole
	ExternalID string // required by every member's role when set
	Members    []Member
}

// Member is one account of an Organization.
type Member struct {
	AccountID   string
	DisplayName string
	Status      string            // ListAccounts Status; default "CreateSuccess"
	Inventory   *vpcemu.Inventory // its connections; nil: none
	// DenyAssumeRole: the member's role does not trust the management
	// account, so every AssumeRole into it is refused.
	DenyAssumeRole bool
}

// Cloud is a running emulated cloud.
type Cloud struct {
	VPC *vpcemu.Server
	SLS *slsemu.Server
	STS *stsemu.Server
	RM  *rmemu.Server
	OTS *otsemu.Server
	FC  *fcapiemu.Server // nil unless Options.FCRuntime was set

	Credentials  cred.Credential // the function's, accepted by every service
	AccountID    string          // the inventory's account, the function's account
	Region       string          // the function's region
	Project      string
	Logstore     string
	StateTable   string
	Organization *Organization // nil: none
}

// Start starts every emulated service, creates the project, logstore and
// state table, and returns them with a fresh STS credential all accept. STS
// issues member tokens that the VPC API accepts for that member only.
func Start(opts Options) (c *Cloud, err error) {
	inv := opts.Inventory
	if inv == nil {
		inv = Demo(time.Now())
	}
	if inv.AccountID == "" {
		return nil, errors.New("emulator: the inventory has no AccountId: the owner account of its connections")
	}
	if opts.Project == "" {
		opts.Project = DefaultProject
	}
	if opts.Logstore == "" {
		opts.Logstore = DefaultLogstore
	}
	if opts.StateTable == "" {
		opts.StateTable = DefaultStateTable
	}
	if opts.FunctionName == "" {
		opts.FunctionName = DefaultFunctionName
	}
	org, members, err := prepareOrganization(opts.Organization, inv.AccountID)
	if err != nil {
		return nil, err
	}
	creds := newSTSCredential()
	c = &Cloud{
		Credentials:  creds,
		AccountID:    inv.AccountID,
		Region:       homeRegion(inv),
		Project:      opts.Project,
		Logstore:     opts.Logstore,
		StateTable:   opts.StateTable,
		Organization: org,
	}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	own := []cred.Credential{creds}

	if c.VPC, err = vpcemu.New(vpcemu.Options{Addr: opts.VPCAddr, Inventory: inv, Accounts: members, Credentials: own}); err != nil {
		return c, fmt.Errorf("emulator: start the VPC API: %w", err)
	}
	if c.SLS, err = slsemu.New(slsemu.Options{Addr: opts.SLSAddr, Credentials: own}); err != nil {
		return c, fmt.Errorf("emulator: start Log Service: %w", err)
	}
	c.SLS.CreateProject(opts.Project)
	if err = c.SLS.CreateLogStore(opts.Project, opts.Logstore); err != nil {
		return c, fmt.Errorf("emulator: %w", err)
	}
	if c.STS, err = stsemu.New(stsemu.Options{
		Credentials:    own,
		DefaultAccount: inv.AccountID,
		Publish:        []*cred.Store{c.VPC.Credentials()},
	}); err != nil {
		return c, fmt.Errorf("emulator: start STS: %w", err)
	}
	if c.RM, err = rmemu.New(rmemu.Options{
		Credentials:     own,
		DefaultAccount:  inv.AccountID,
		MasterAccountID: inv.AccountID,
		Accounts:        directory(org),
	}); err != nil {
		return c, fmt.Errorf("emulator: start ResourceManager: %w", err)
	}
	if err = c.addRoles(org); err != nil {
		return c, err
	}
	if c.OTS, err = otsemu.New(otsemu.Options{Instance: DefaultStateInstance, Credentials: own}); err != nil {
		return c, fmt.Errorf("emulator: start Tablestore: %w", err)
	}
	if !opts.NoStateTable {
		if err = c.createStateTable(); err != nil {
			return c, err
		}
	}
	if opts.FCRuntime != nil {
		if c.FC, err = fcapiemu.New(fcapiemu.Options{
			Credentials: own,
			Runtime:     opts.FCRuntime,
			Functions:   []string{opts.FunctionName},
			Invocation: fcemu.Invocation{
				AccessKeyID:     creds.AccessKeyID,
				AccessKeySecret: creds.AccessKeySecret,
				SecurityToken:   creds.SecurityToken,
				FunctionName:    opts.FunctionName,
				Region:          c.Region,
				AccountID:       c.AccountID,
			},
		}); err != nil {
			return c, fmt.Errorf("emulator: start the FC OpenAPI: %w", err)
		}
	}
	return c, nil
}

// prepareOrganization fills in the defaults of org and gives the members'
// inventories by account, each owned by its member.
func prepareOrganization(org *Organization, management string) (*Organization, map[string]*vpcemu.Inventory, error) {
	if org == nil {
		return nil, nil, nil
	}
	o := *org
	if o.RoleName == "" {
		o.RoleName = DefaultMemberRole
	}
	o.Members = append([]Member(nil), org.Members...)
	invs := map[string]*vpcemu.Inventory{}
	for i, m := range o.Members {
		switch {
		case m.AccountID == "":
			return nil, nil, fmt.Errorf("emulator: organization member %d has no AccountID", i)
		case m.AccountID == management:
			return nil, nil, fmt.Errorf("emulator: organization member %s is the management account", m.AccountID)
		case invs[m.AccountID] != nil:
			return nil, nil, fmt.Errorf("emulator: organization member %s is listed twice", m.AccountID)
		}
		if m.Status == "" {
			o.Members[i].Status = "CreateSuccess"
		}
		inv := &vpcemu.Inventory{AccountID: m.AccountID, Regions: map[string][]vpcemu.Connection{}}
		if m.Inventory != nil {
			inv = m.Inventory
			if inv.AccountID == "" {
				inv.AccountID = m.AccountID
			}
			if inv.AccountID != m.AccountID {
				return nil, nil, fmt.Errorf("emulator: organization member %s has the inventory of account %s", m.AccountID, inv.AccountID)
			}
		}
		invs[m.AccountID] = inv
	}
	return &o, invs, nil
}

// directory is the Resource Directory's member list as ListAccounts gives it.
func directory(org *Organization) []rmemu.Account {
	if org == nil {
		return nil
	}
	out := make([]rmemu.Account, 0, len(org.Members))
	for _, m := range org.Members {
		out = append(out, rmemu.Account{
			AccountId:   m.AccountID,
			DisplayName: m.DisplayName,
			Status:      m.Status,
			Type:        "ResourceAccount",
			JoinMethod:  "created",
		})
	}
	return out
}

// addRoles gives every member its role, trusting the management account
// unless the member denies it.
func (c *Cloud) addRoles(org *Organization) error {
	if org == nil {
		return nil
	}
	for _, m := range org.Members {
		r := stsemu.Role{Account: m.AccountID, Name: org.RoleName, Trusted: []string{c.AccountID}, ExternalID: org.ExternalID}
		if err := c.STS.AddRole(r); err != nil {
			return fmt.Errorf("emulator: the role of member %s: %w", m.AccountID, err)
		}
		if m.DenyAssumeRole {
			c.STS.DenyRole(m.AccountID, org.RoleName)
		}
	}
	return nil
}

// createStateTable creates the state table through the Tablestore SDK, as
// setup-state does.
func (c *Cloud) createStateTable() error {
	st, err := statestore.New(statestore.Options{
		Location: c.StateLocation(),
		Endpoint: c.OTS.Endpoint(),
		Credentials: statestore.Credentials{
			AccessKeyID:     c.Credentials.AccessKeyID,
			AccessKeySecret: c.Credentials.AccessKeySecret,
			SecurityToken:   c.Credentials.SecurityToken,
		},
	})
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := st.Setup(ctx); err != nil {
		return fmt.Errorf("emulator: create the state table: %w", err)
	}
	return nil
}

// StateLocation is where the state store lives: STATE_STORE.
func (c *Cloud) StateLocation() statestore.Location {
	return statestore.Location{Instance: c.OTS.Instance(), Table: c.StateTable}
}

// homeRegion is the function's region: DefaultRegion when the inventory has
// it, otherwise its first region by name, so that a custom inventory still
// gets a region its connections live in.
func homeRegion(inv *vpcemu.Inventory) string {
	if _, ok := inv.Regions[DefaultRegion]; ok || len(inv.Regions) == 0 {
		return DefaultRegion
	}
	regions := make([]string, 0, len(inv.Regions))
	for r := range inv.Regions {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	return regions[0]
}

// Env is the function's environment that points vpnauthz at this cloud: the
// endpoints, the logstore, the state store, the credential (as the standard
// credential chain reads it) and the account and region FC would set.
func (c *Cloud) Env() map[string]string {
	env := map[string]string{
		"VPC_ENDPOINT":                    c.VPC.URL(),
		"SLS_ENDPOINT":                    c.SLS.Endpoint(),
		"SLS_PROJECT":                     c.Project,
		"SLS_LOGSTORE":                    c.Logstore,
		"STS_ENDPOINT":                    c.STS.URL(),
		"RESOURCEMANAGER_ENDPOINT":        c.RM.URL(),
		"TABLESTORE_ENDPOINT":             c.OTS.Endpoint(),
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     c.Credentials.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": c.Credentials.AccessKeySecret,
		"ALIBABA_CLOUD_SECURITY_TOKEN":    c.Credentials.SecurityToken,
		"FC_ACCOUNT_ID":                   c.AccountID,
		"FC_REGION":                       c.Region,
	}
	if c.FC != nil {
		env["FC_ENDPOINT"] = c.FC.URL()
	}
	return env
}

// AddCredential makes every service accept k as the function's account's
// key (k.Account ""), e.g. a key a test hands to one invocation.
func (c *Cloud) AddCredential(k cred.Credential) {
	for _, st := range c.stores() {
		st.Add(k)
	}
}

func (c *Cloud) stores() []*cred.Store {
	var out []*cred.Store
	if c.VPC != nil {
		out = append(out, c.VPC.Credentials())
	}
	if c.SLS != nil {
		out = append(out, c.SLS.Credentials())
	}
	if c.STS != nil {
		out = append(out, c.STS.Credentials())
	}
	if c.RM != nil {
		out = append(out, c.RM.Credentials())
	}
	if c.OTS != nil {
		out = append(out, c.OTS.Credentials())
	}
	if c.FC != nil {
		out = append(out, c.FC.Credentials())
	}
	return out
}

// Close stops every service that was started.
func (c *Cloud) Close() {
	if c.FC != nil {
		c.FC.Close()
	}
	if c.OTS != nil {
		c.OTS.Close()
	}
	if c.RM != nil {
		c.RM.Close()
	}
	if c.STS != nil {
		c.STS.Close()
	}
	if c.SLS != nil {
		c.SLS.Close()
	}
	if c.VPC != nil {
		c.VPC.Close()
	}
}

// newSTSCredential makes a key, secret and token shaped like those STS hands
// out, random per start so that nothing outside this process can use them.
// It never expires: an emulator may serve for days.
func newSTSCredential() cred.Credential {
	return cred.Credential{
		AccessKeyID:     "STS." + rand.Text(),
		AccessKeySecret: rand.Text() + rand.Text(),
		SecurityToken:   "CAIS" + rand.Text() + rand.Text() + rand.Text() + rand.Text(),
	}
}
