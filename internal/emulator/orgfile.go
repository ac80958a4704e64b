package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"vpnauthz/internal/emulator/vpcemu"
)

// OrganizationFile is an emulated organisation as a JSON file: the
// management account's inventory (the function's account) and the members
// of its Resource Directory, each with its own inventory, under the role
// RoleName that requires ExternalID. The benchmark writes it; `vpnauthz
// emulate --org` serves it.
type OrganizationFile struct {
	Inventory  *vpcemu.Inventory
	RoleName   string
	ExternalID string
	Members    []Member
}

// LoadOrganization reads an organisation file strictly: unknown fields,
// trailing data and invalid inventories are errors naming the member.
func LoadOrganization(path string) (*vpcemu.Inventory, *Organization, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read organisation: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f OrganizationFile
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("%s: parse organisation: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s: parse organisation: trailing data after the JSON object", path)
	}
	if f.Inventory == nil {
		return nil, nil, fmt.Errorf("%s: the organisation has no Inventory: the management account's connections", path)
	}
	if err := f.Inventory.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%s: Inventory: %w", path, err)
	}
	for i, m := range f.Members {
		if m.Inventory == nil {
			continue
		}
		if err := m.Inventory.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%s: member %d (%s): %w", path, i, m.AccountID, err)
		}
	}
	// Start checks the members' ids and owners.
	return f.Inventory, &Organization{RoleName: f.RoleName, ExternalID: f.ExternalID, Members: f.Members}, nil
}

// WriteOrganization writes an organisation file LoadOrganization reads.
func WriteOrganization(path string, f OrganizationFile) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
