package endpoint

import (
	"slices"
	"strings"
	"unicode"

	"vpnauthz/internal/target"
)

// RegionPlaceholder is replaced by the region in a template endpoint.
const RegionPlaceholder = "{region}"

// sampleRegion fills a template's placeholder when the template is checked.
const sampleRegion = "cn-hangzhou"

// Regional is an endpoint setting that may differ per region, so that
// private endpoints work in a scan that covers several regions:
//
//	(empty)                                  each SDK's own endpoint for the region
//	https://vpc.example.com                  one endpoint for every region
//	https://vpc-vpc.{region}.example.com     a template, {region} replaced
//	cn-hangzhou=vpc-a.example.com cn-shanghai=https://vpc-b.example.com
//	                                         REGION=endpoint pairs (commas or white
//	                                         space between them); one entry
//	                                         without REGION= (an endpoint or a
//	                                         template) serves the other regions,
//	                                         and without it they get the SDK's own
//
// The zero Regional sets nothing.
type Regional struct {
	byRegion map[string]entry
	other    entry // for regions not in byRegion; zero: none
}

// entry is one endpoint or template.
type entry struct {
	fixed    Endpoint
	template string // trimmed, with RegionPlaceholder; "" for a fixed endpoint
}

func (e entry) isZero() bool { return e.fixed.IsZero() && e.template == "" }

func (e entry) String() string {
	if e.template != "" {
		return e.template
	}
	return e.fixed.URL()
}

func (e entry) resolve(region string) (Endpoint, error) {
	if e.template == "" {
		return e.fixed, nil
	}
	if !target.ValidRegion(region) {
		return Endpoint{}, &Error{Value: region, Reason: "not a region id, so the endpoint template " + e.template + " cannot be filled in"}
	}
	return Parse(strings.ReplaceAll(e.template, RegionPlaceholder, region))
}

func parseEntry(v string) (entry, error) {
	if !strings.Contains(v, RegionPlaceholder) {
		e, err := Parse(v)
		return entry{fixed: e}, err
	}
	// The placeholder may stand only where a region id makes a valid host:
	// a sample region shows whether it does.
	if _, err := Parse(strings.ReplaceAll(v, RegionPlaceholder, sampleRegion)); err != nil {
		e := err.(*Error)
		return entry{}, fail(v, e.Reason+" (with "+RegionPlaceholder+" replaced by a region)")
	}
	return entry{template: v}, nil
}

// Fixed is the Regional that sends every region to e.
func Fixed(e Endpoint) Regional { return Regional{other: entry{fixed: e}} }

// MustTemplate is the Regional of a template known to be valid; it panics
// otherwise.
func MustTemplate(t string) Regional {
	e, err := parseEntry(t)
	if err != nil || e.template == "" {
		panic("endpoint: bad template " + t)
	}
	return Regional{other: e}
}

// ParseRegional reads a Regional (see the type). Errors are *Error values
// naming the bad entry.
func ParseRegional(v string) (Regional, error) {
	var r Regional
	entries := strings.FieldsFunc(v, func(c rune) bool { return c == ',' || unicode.IsSpace(c) })
	for _, raw := range entries {
		region, value, paired := strings.Cut(raw, "=")
		// Only a word before "=" makes a pair: in anything else (a URL with
		// a query, say) the "=" is part of a bad endpoint, reported as such.
		paired = paired && strings.Trim(region, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
		if !paired {
			if !r.other.isZero() {
				return Regional{}, fail(raw, "only one entry may go without REGION=: it is the endpoint of every region not listed")
			}
			e, err := parseEntry(raw)
			if err != nil {
				return Regional{}, err
			}
			r.other = e
			continue
		}
		if !target.ValidRegion(region) {
			return Regional{}, fail(raw, "REGION=ENDPOINT: the region must be a region id like cn-hangzhou")
		}
		if _, dup := r.byRegion[region]; dup {
			return Regional{}, fail(raw, "region "+region+" is given twice")
		}
		e, err := parseEntry(value)
		if err != nil {
			ee := err.(*Error)
			return Regional{}, fail(raw, ee.Reason)
		}
		if r.byRegion == nil {
			r.byRegion = map[string]entry{}
		}
		r.byRegion[region] = e
	}
	return r, nil
}

// IsZero reports whether r sets nothing: every region gets its SDK's own
// endpoint.
func (r Regional) IsZero() bool { return len(r.byRegion) == 0 && r.other.isZero() }

// For is the endpoint of region: the zero Endpoint when r sets none for it
// (the SDK's own then applies). It fails only for a template and a value
// that is not a region id.
func (r Regional) For(region string) (Endpoint, error) {
	if e, ok := r.byRegion[region]; ok {
		return e.resolve(region)
	}
	return r.other.resolve(region)
}

// String is r in the form ParseRegional reads, pairs sorted by region.
func (r Regional) String() string {
	regions := make([]string, 0, len(r.byRegion))
	for k := range r.byRegion {
		regions = append(regions, k)
	}
	slices.Sort(regions)
	parts := make([]string, 0, len(regions)+1)
	for _, k := range regions {
		parts = append(parts, k+"="+r.byRegion[k].String())
	}
	if !r.other.isZero() {
		parts = append(parts, r.other.String())
	}
	return strings.Join(parts, ",")
}

// MustParseRegional is ParseRegional for values known to be valid, such as
// an emulator's own address; it panics otherwise.
func MustParseRegional(v string) Regional {
	r, err := ParseRegional(v)
	if err != nil {
		panic(err)
	}
	return r
}

// Equal reports whether r and o send every region to the same endpoint.
func (r Regional) Equal(o Regional) bool { return r.String() == o.String() }
