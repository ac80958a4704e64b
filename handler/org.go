package handler

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"vpnauthz/internal/accounts"
	"vpnauthz/internal/config"
	"vpnauthz/internal/finding"
	"vpnauthz/internal/policy"
	"vpnauthz/internal/target"
)

// ErrAccountsUnavailable is an invocation error: the Resource Directory
// could not be listed while TRUST_ORGANIZATION is on. Judging without the
// organisation's members would fail every authorization to them as
// untrusted, so nothing is scanned and the platform's retry takes over.
const ErrAccountsUnavailable = "AccountsUnavailable"

// org is the accounts one invocation may scan, and who it trusts besides
// the policy.
type org struct {
	own     string          // the function's account; "" when not known (local runs)
	active  bool            // ACCOUNTS or TRUST_ORGANIZATION is set
	plan    accounts.Plan   // when active
	scanned map[string]bool // the accounts scanned, the own one as ""
	order   []string        // scanned, the own one ("") first
	trusted []int64         // TRUST_ORGANIZATION: every listed member
	// listErr is a failed directory listing for ACCOUNTS=resource-directory
	// without TRUST_ORGANIZATION: the scan covers the own account and says
	// so in an ERROR finding.
	listErr error
}

// organisation resolves the accounts of this invocation: the function's own
// account when ACCOUNTS is unset, else ACCOUNTS (listing the directory when
// it says resource-directory or TRUST_ORGANIZATION is on) less
// ACCOUNTS_EXCLUDE.
func (inv *invocation) organisation(cfg *config.Config) (*org, error) {
	o := &org{own: inv.AccountID, active: cfg.Organisation()}
	if !o.active {
		o.add("")
		return o, nil
	}
	if !target.ValidAccountID(inv.AccountID) {
		inv.log.Error("no account id for an organisation scan", "account_id", truncate(inv.AccountID))
		return nil, invokeError(ErrInvalidContext, "the invocation names no valid account id (%s): ACCOUNTS and TRUST_ORGANIZATION need the function's own account", quote(inv.AccountID))
	}
	var listing *accounts.Listing
	if cfg.NeedsDirectory() {
		if err := inv.credentials(); err != nil {
			return nil, err
		}
		l, err := inv.listDirectory()
		switch {
		case err == nil:
			listing = &l
		case cfg.TrustOrganization:
			inv.log.Error("resource directory not listed", "error", err.Error())
			return nil, invokeError(ErrAccountsUnavailable, "TRUST_ORGANIZATION needs the resource directory's members, and listing them failed: %s", err)
		default:
			inv.log.Error("resource directory not listed: scanning the function's own account only", "error", err.Error())
			o.listErr = err
		}
	}
	spec := cfg.Accounts
	if o.listErr != nil {
		spec = accounts.Spec{Mode: accounts.List, IDs: []string{o.own}}
	}
	plan, err := accounts.Resolve(spec, o.own, listing, cfg.AccountsExclude, cfg.TrustOrganization && listing != nil)
	if err != nil {
		return nil, invokeError(ErrScanFailed, "accounts of the scan: %s", err)
	}
	o.fromPlan(plan)
	inv.log.Info("accounts", "mode", cfg.Accounts.Mode.String(), "scanned", len(o.order), "excluded", len(plan.Excluded),
		"not_joined", len(plan.Skipped), "trusted_members", len(o.trusted))
	return o, nil
}

// fromPlan takes the scanned and trusted accounts of a plan.
func (o *org) fromPlan(plan accounts.Plan) {
	o.plan = plan
	for _, t := range plan.Targets {
		if t.Own {
			o.add("")
		} else {
			o.add(t.ID)
		}
	}
	for _, id := range plan.Trusted {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			o.trusted = append(o.trusted, n)
		}
	}
}

// listDirectory reads the Resource Directory with this invocation's
// credentials.
func (inv *invocation) listDirectory() (accounts.Listing, error) {
	if inv.h.opts.ListDirectory == nil {
		return accounts.Listing{}, errors.New("no resource directory client is configured")
	}
	l, err := inv.h.opts.ListDirectory(inv.ctx, inv.Invocation)
	if err != nil {
		return accounts.Listing{}, err
	}
	inv.log.Info("resource directory listed", "management_account", l.MasterAccountID, "members", len(l.Members))
	return l, nil
}

func (o *org) add(account string) {
	if o.scanned == nil {
		o.scanned = map[string]bool{}
	}
	if !o.scanned[account] {
		o.scanned[account] = true
		if account == "" {
			o.order = slices.Insert(o.order, 0, "")
		} else {
			o.order = append(o.order, account)
		}
	}
}

// local writes the function's own account as "", as targets do.
func (o *org) local(account string) string {
	if account == o.own {
		return ""
	}
	return account
}

// covers reports whether an account ("" the own one) is scanned.
func (o *org) covers(account string) bool { return o.scanned[o.local(account)] }

// uid is an account as a UID, the own one included.
func (o *org) uid(account string) string {
	if account == "" {
		return o.own
	}
	return account
}

// scope is SCAN_TARGETS with the own account written as "".
func (o *org) scope(cfg *config.Config) []target.Target { return target.Normalize(cfg.Targets, o.own) }

// targets are what a scan of the whole scope reads: SCAN_TARGETS in every
// scanned account.
func (o *org) targets(cfg *config.Config) []target.Target {
	return target.ForAccounts(o.scope(cfg), o.order)
}

// outsideReason says why an account is not scanned.
func (o *org) outsideReason(account string) string {
	if o.listErr != nil {
		return fmt.Sprintf("account %s is not scanned: the resource directory could not be listed (%s)", account, o.listErr)
	}
	if slices.Contains(o.plan.Excluded, account) {
		return fmt.Sprintf("account %s is in ACCOUNTS_EXCLUDE", account)
	}
	return fmt.Sprintf("account %s is outside ACCOUNTS", account)
}

// listingFinding is the ERROR finding of a failed directory listing: the
// scan went on with the function's own account, and the members it could
// not name are this one finding, on the account whose listing failed.
func (o *org) listingFinding(now time.Time) *finding.Finding {
	if o.listErr == nil {
		return nil
	}
	f := policy.ErrorFinding(target.All, target.All, o.own,
		"The resource directory's members could not be listed, so only this account was scanned: "+o.listErr.Error(), now)
	return &f
}

func (o *org) report(scanned int) *AccountsReport {
	if !o.active {
		return nil
	}
	r := &AccountsReport{Scanned: scanned, Excluded: o.plan.Excluded}
	for _, s := range o.plan.Skipped {
		r.NotJoined = append(r.NotJoined, NotJoined{Account: s.ID, Reason: s.Reason})
	}
	if o.listErr != nil {
		r.ListError = o.listErr.Error()
	}
	return r
}
