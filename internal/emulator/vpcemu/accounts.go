package vpcemu

import (
	"fmt"
	"sort"
)

// AddAccount adds (or replaces) the inventory of another account, uid. Calls
// signed by a credential of that account (cred.Credential.Account == uid)
// see its connections and no other account's.
func (s *Server) AddAccount(uid string, inv *Inventory) error {
	if _, err := parseAccountID(uid); err != nil {
		return fmt.Errorf("account %w", err)
	}
	in := &Inventory{Regions: map[string][]Connection{}}
	if inv != nil {
		if err := inv.Validate(); err != nil {
			return fmt.Errorf("account %s: inventory: %w", uid, err)
		}
		in = inv.clone()
	}
	switch in.AccountID {
	case "":
		in.AccountID = uid
	case uid:
	default:
		return fmt.Errorf("account %s: inventory has AccountId %s", uid, in.AccountID)
	}
	s.invMu.Lock()
	defer s.invMu.Unlock()
	if uid == s.inv.AccountID {
		return fmt.Errorf("account %s is the server's own account (Options.Inventory)", uid)
	}
	if s.accounts == nil {
		s.accounts = map[string]*Inventory{}
	}
	s.accounts[uid] = in
	return nil
}

// Accounts lists the other accounts' ids, sorted.
func (s *Server) Accounts() []string {
	s.invMu.RLock()
	defer s.invMu.RUnlock()
	ids := make([]string, 0, len(s.accounts))
	for id := range s.accounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// SnapshotAccount returns a deep copy of another account's inventory, or
// nil when the server has no such account.
func (s *Server) SnapshotAccount(uid string) *Inventory {
	s.invMu.RLock()
	defer s.invMu.RUnlock()
	if inv, ok := s.accounts[uid]; ok {
		return inv.clone()
	}
	return nil
}

// accountOf is the account of a verified access key: "" for the server's
// own account, whether the credential names none or names it.
func (s *Server) accountOf(accessKey string) string {
	c, ok := s.creds.Lookup(accessKey)
	if !ok || c.Account == "" {
		return ""
	}
	s.invMu.RLock()
	defer s.invMu.RUnlock()
	if c.Account == s.inv.AccountID {
		return ""
	}
	return c.Account
}

// emptyInventory is what an account the server holds no inventory for
// sees: nothing, like a real account without VPN connections.
var emptyInventory = &Inventory{Regions: map[string][]Connection{}}

// inventoryLocked is the inventory an account's calls see.
func (s *Server) inventoryLocked(account string) *Inventory {
	if account == "" {
		return s.inv
	}
	if inv, ok := s.accounts[account]; ok {
		return inv
	}
	return emptyInventory
}
