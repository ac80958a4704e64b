package vpcemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Authorization is one cross-account authorization of a VPN connection, as
// DescribeVpnCrossAccountAuthorizations returns it.
type Authorization struct {
	AliUid       int64  `json:"AliUid"` // owner of the connection; 0 means the inventory's AccountId
	BindUid      int64  `json:"BindUid"`
	BindProduct  string `json:"BindProduct"`
	BindInstance string `json:"BindInstance"`
	CreationTime int64  `json:"CreationTime"` // returned verbatim (ms normally)
}

// Fault is a permanent error answered for one connection.
type Fault struct {
	Code       string `json:"Code"`
	HTTPStatus int    `json:"HTTPStatus"` // 0: the usual status of Code
	Message    string `json:"Message"`    // "": the usual message of Code
}

// Connection is one IPsec-VPN connection of a region.
type Connection struct {
	VpnConnectionId string          `json:"VpnConnectionId"`
	Name            string          `json:"Name,omitempty"`
	Authorizations  []Authorization `json:"Authorizations"`
	// Error is answered to DescribeVpnCrossAccountAuthorizations for this
	// connection (e.g. Forbidden.RAM 403); the connection is still listed.
	Error *Fault `json:"Error,omitempty"`

	// Optional listing details; zero values get plausible defaults.
	VpnGatewayId      string `json:"VpnGatewayId,omitempty"`
	CustomerGatewayId string `json:"CustomerGatewayId,omitempty"`
	Status            string `json:"Status,omitempty"`
	CreateTime        int64  `json:"CreateTime,omitempty"`
}

// Inventory is the state of one account: region id -> connections in listing order.
type Inventory struct {
	AccountID string                  `json:"AccountId"`
	Regions   map[string][]Connection `json:"Regions"`
}

var (
	regionIDPattern   = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)+$`)
	resourceIDPattern = regexp.MustCompile(`^[A-Za-z0-9*_.-]+$`)
)

// LoadInventory reads and parses an inventory JSON file.
func LoadInventory(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	inv, err := ParseInventory(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return inv, nil
}

// ParseInventory decodes an inventory strictly: unknown fields, trailing data
// and malformed ids are errors that name the place.
func ParseInventory(data []byte) (*Inventory, error) {
	// encoding/json matches names case-insensitively and does not say where an
	// unknown field is: check the names first, exactly, with their place.
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		return nil, fmt.Errorf("parse inventory: %w", describeJSONError(data, err))
	}
	if err := checkFieldNames(tree, reflect.TypeFor[Inventory](), ""); err != nil {
		return nil, fmt.Errorf("parse inventory: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var inv Inventory
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("parse inventory: %w", describeJSONError(data, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse inventory: trailing data after the JSON object")
	}
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return &inv, nil
}

// checkFieldNames reports the first object key of v that t has no field for.
func checkFieldNames(v any, t reflect.Type, place string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type error, reported by the typed decode
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && name != "-" {
				if name == "" {
					name = f.Name
				}
				fields[name] = f.Type
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, known := fields[k]
			sub := k
			if place != "" {
				sub = place + "." + k
			}
			if !known {
				return fmt.Errorf("%s: unknown field", sub)
			}
			if err := checkFieldNames(obj[k], ft, sub); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := checkFieldNames(obj[k], t.Elem(), fmt.Sprintf("%s[%q]", place, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, item := range list {
			if err := checkFieldNames(item, t.Elem(), fmt.Sprintf("%s[%d]", place, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// describeJSONError adds the line and column to a syntax or type error.
func describeJSONError(data []byte, err error) error {
	var offset int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
		if typ.Field != "" {
			return fmt.Errorf("%s: %w (%s)", typ.Field, err, position(data, offset))
		}
	}
	if offset < 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, position(data, offset))
}

func position(data []byte, offset int64) string {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// Validate checks ids and values; the error names the first bad place.
func (inv *Inventory) Validate() error {
	if inv.AccountID != "" {
		if _, err := parseAccountID(inv.AccountID); err != nil {
			return fmt.Errorf("AccountId: %w", err)
		}
	}
	regions := make([]string, 0, len(inv.Regions))
	for r := range inv.Regions {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	for _, region := range regions {
		if !regionIDPattern.MatchString(region) {
			//lint:ignore ST1005 the message starts with the inventory field it names
			return fmt.Errorf("Regions[%q]: not a region id (like cn-hangzhou)", region)
		}
		seen := map[string]int{}
		for i, c := range inv.Regions[region] {
			place := fmt.Sprintf("Regions[%q][%d]", region, i)
			if err := c.validate(); err != nil {
				return fmt.Errorf("%s.%w", place, err)
			}
			if j, dup := seen[c.VpnConnectionId]; dup {
				return fmt.Errorf("%s.VpnConnectionId: %q already listed at index %d", place, c.VpnConnectionId, j)
			}
			seen[c.VpnConnectionId] = i
		}
	}
	return nil
}

func (c Connection) validate() error {
	if !strings.HasPrefix(c.VpnConnectionId, "vco-") || !resourceIDPattern.MatchString(c.VpnConnectionId) {
		return fmt.Errorf("VpnConnectionId: %q is not a VPN connection id (like vco-...)", c.VpnConnectionId)
	}
	if c.VpnGatewayId != "" && !resourceIDPattern.MatchString(c.VpnGatewayId) {
		return fmt.Errorf("VpnGatewayId: %q is not an id", c.VpnGatewayId)
	}
	if c.CustomerGatewayId != "" && !resourceIDPattern.MatchString(c.CustomerGatewayId) {
		return fmt.Errorf("CustomerGatewayId: %q is not an id", c.CustomerGatewayId)
	}
	for i, a := range c.Authorizations {
		if err := a.validate(); err != nil {
			return fmt.Errorf("Authorizations[%d].%w", i, err)
		}
	}
	if c.Error != nil {
		if err := c.Error.validate(); err != nil {
			return fmt.Errorf("Error.%w", err)
		}
	}
	return nil
}

func (a Authorization) validate() error {
	switch {
	case a.AliUid < 0:
		return fmt.Errorf("AliUid: %d is not an account id", a.AliUid)
	case a.BindUid <= 0:
		return fmt.Errorf("BindUid: %d is not an account id", a.BindUid)
	case a.BindProduct == "":
		return errors.New("BindProduct: missing (like CEN)")
	case !resourceIDPattern.MatchString(a.BindInstance):
		return fmt.Errorf("BindInstance: %q is not an instance id (like cen-...)", a.BindInstance)
	}
	return nil
}

func (f Fault) validate() error {
	if f.Code == "" {
		//lint:ignore ST1005 the message starts with the inventory field it names
		return errors.New("Code: missing")
	}
	if f.HTTPStatus == 0 {
		if _, known := knownCodes[f.Code]; !known {
			return fmt.Errorf("HTTPStatus: missing, and %q has no usual status", f.Code)
		}
		return nil
	}
	if f.HTTPStatus < 400 || f.HTTPStatus > 599 {
		return fmt.Errorf("HTTPStatus: %d is not an error status (400..599)", f.HTTPStatus)
	}
	return nil
}

func parseAccountID(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not an account id (decimal digits)", s)
	}
	return n, nil
}

// clone returns a deep copy.
func (inv *Inventory) clone() *Inventory {
	out := &Inventory{AccountID: inv.AccountID, Regions: make(map[string][]Connection, len(inv.Regions))}
	for region, conns := range inv.Regions {
		cs := make([]Connection, len(conns))
		for i, c := range conns {
			cs[i] = c.clone()
		}
		out.Regions[region] = cs
	}
	return out
}

func (c Connection) clone() Connection {
	out := c
	out.Authorizations = append([]Authorization(nil), c.Authorizations...)
	if c.Error != nil {
		f := *c.Error
		out.Error = &f
	}
	return out
}

// find returns the connection, or nil.
func (inv *Inventory) find(region, id string) *Connection {
	conns := inv.Regions[region]
	for i := range conns {
		if conns[i].VpnConnectionId == id {
			return &conns[i]
		}
	}
	return nil
}
