// Package emulator starts the whole emulated cloud vpnauthz talks to — the VPC
// API and Log Service, on loopback, sharing one generated STS credential — in
// one call, and holds the demo inventory and configuration that the local
// commands and tests run on.
package emulator

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"time"

	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/slsemu"
	"vpnauthz/internal/emulator/vpcemu"
)

// Defaults of Options.
const (
	DefaultProject  = "vpnauthz-demo"
	DefaultLogstore = "findings"
	// DefaultRegion is the function's region when the inventory has it.
	DefaultRegion = "cn-hangzhou"
)

// Options configure Start.
type Options struct {
	Inventory *vpcemu.Inventory // nil: Demo(time.Now())
	VPCAddr   string            // default "127.0.0.1:0"
	SLSAddr   string            // default "127.0.0.1:0"
	Project   string            // default DefaultProject
	Logstore  string            // default DefaultLogstore
}

// Cloud is a running emulated cloud.
type Cloud struct {
	VPC         *vpcemu.Server
	SLS         *slsemu.Server
	Credentials cred.Credential // accepted by both services
	AccountID   string          // the inventory's account, the function's account
	Region      string          // the function's region
	Project     string
	Logstore    string
}

// Start starts the VPC API and Log Service emulators, creates the project and
// logstore, and returns them with a fresh STS credential both accept.
func Start(opts Options) (*Cloud, error) {
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
	creds := newSTSCredential()
	vpc, err := vpcemu.New(vpcemu.Options{Addr: opts.VPCAddr, Inventory: inv, Credentials: []cred.Credential{creds}})
	if err != nil {
		return nil, fmt.Errorf("emulator: start the VPC API: %w", err)
	}
	sls, err := slsemu.New(slsemu.Options{Addr: opts.SLSAddr, Credentials: []cred.Credential{creds}})
	if err != nil {
		vpc.Close()
		return nil, fmt.Errorf("emulator: start Log Service: %w", err)
	}
	sls.CreateProject(opts.Project)
	if err := sls.CreateLogStore(opts.Project, opts.Logstore); err != nil {
		vpc.Close()
		sls.Close()
		return nil, fmt.Errorf("emulator: %w", err)
	}
	return &Cloud{
		VPC:         vpc,
		SLS:         sls,
		Credentials: creds,
		AccountID:   inv.AccountID,
		Region:      homeRegion(inv),
		Project:     opts.Project,
		Logstore:    opts.Logstore,
	}, nil
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
// endpoints, the logstore, the credential (as the standard credential chain
// reads it) and the account and region FC would set.
func (c *Cloud) Env() map[string]string {
	return map[string]string{
		"VPC_ENDPOINT":                    c.VPC.URL(),
		"SLS_ENDPOINT":                    c.SLS.Endpoint(),
		"SLS_PROJECT":                     c.Project,
		"SLS_LOGSTORE":                    c.Logstore,
		"ALIBABA_CLOUD_ACCESS_KEY_ID":     c.Credentials.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET": c.Credentials.AccessKeySecret,
		"ALIBABA_CLOUD_SECURITY_TOKEN":    c.Credentials.SecurityToken,
		"FC_ACCOUNT_ID":                   c.AccountID,
		"FC_REGION":                       c.Region,
	}
}

// Close stops both services.
func (c *Cloud) Close() {
	c.VPC.Close()
	c.SLS.Close()
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
