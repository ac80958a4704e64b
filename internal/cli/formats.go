package cli

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"time"

	"vpnauthz/internal/finding"
)

// fields is a finding as Log Service stores it: the schema's keys and their
// values, in schema order. Every machine format starts from it, so a key
// added to the schema reaches each of them.
func fields(f *finding.Finding) ([]string, map[string]string) {
	values := f.Values()
	m := make(map[string]string, len(finding.Keys))
	for i, k := range finding.Keys {
		m[k] = values[i]
	}
	return finding.Keys, m
}

// writeJSONL writes one JSON object per finding, with exactly the keys of
// the Log Service log, in schema order, every value a string.
func writeJSONL(w io.Writer, findings []finding.Finding) error {
	bw := bufio.NewWriter(w)
	for i := range findings {
		keys, m := fields(&findings[i])
		bw.WriteByte('{')
		for j, k := range keys {
			if j > 0 {
				bw.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			vb, _ := json.Marshal(m[k])
			bw.Write(kb)
			bw.WriteByte(':')
			bw.Write(vb)
		}
		bw.WriteString("}\n")
	}
	return bw.Flush()
}

// writeCSV writes a header of the Log Service keys, then one row per
// finding.
func writeCSV(w io.Writer, findings []finding.Finding) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(finding.Keys); err != nil {
		return err
	}
	for i := range findings {
		if err := cw.Write(findings[i].Values()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// OCSF 1.x Compliance Finding (class 2003, category Findings).
const (
	ocsfVersion      = "1.1.0"
	ocsfClassUID     = 2003
	ocsfCategoryUID  = 2
	ocsfActivityNew  = 1 // Create
	ocsfActivityUpd  = 2 // Update
	ocsfActivityDone = 3 // Close
	ocsfStatusNew    = 1
	ocsfStatusSupp   = 3
	ocsfStatusResolv = 4
)

var ocsfActivityNames = map[int]string{ocsfActivityNew: "Create", ocsfActivityUpd: "Update", ocsfActivityDone: "Close"}
var ocsfStatusNames = map[int]string{ocsfStatusNew: "New", ocsfStatusSupp: "Suppressed", ocsfStatusResolv: "Resolved"}

// ocsfSeverity maps the rules' severities to OCSF severity_id.
var ocsfSeverity = map[string]struct {
	id   int
	name string
}{"low": {2, "Low"}, "medium": {3, "Medium"}, "high": {4, "High"}}

// ocsfCompliance maps a finding's status to compliance.status_id: a PASS
// passes, a FAIL fails, a SUPPRESSED finding still fails the check (the
// exception is in the finding's status, Suppressed), and an ERROR, a check
// that could not be made, is a Warning: it needs looking at, but is not a
// verdict.
var ocsfCompliance = map[string]struct {
	id   int
	name string
}{
	finding.StatusPass:       {1, "Pass"},
	finding.StatusError:      {2, "Warning"},
	finding.StatusFail:       {3, "Fail"},
	finding.StatusSuppressed: {3, "Fail"},
}

// ocsfState gives a finding's OCSF status and activity from its status
// and, when it has one, its lifecycle:
//
//	lifecycle      status      activity
//	new            New         Create
//	open           New         Update
//	reopened       New         Update
//	suppressed     Suppressed  Update (Create when first seen in this scan)
//	resolved       Resolved    Close
//	pass           New         Create
//	(none)         SUPPRESSED → Suppressed, anything else → New; Create
//
// With no lifecycle (a stateless scan) every finding is a Create: the
// scan cannot know it was seen before.
func ocsfState(status, lifecycle, firstSeen, observed string) (statusID, activityID int) {
	switch lifecycle {
	case "new", "pass":
		return ocsfStatusNew, ocsfActivityNew
	case "open", "reopened":
		return ocsfStatusNew, ocsfActivityUpd
	case "suppressed":
		if firstSeen == "" || firstSeen == observed {
			return ocsfStatusSupp, ocsfActivityNew
		}
		return ocsfStatusSupp, ocsfActivityUpd
	case "resolved":
		return ocsfStatusResolv, ocsfActivityDone
	}
	if status == finding.StatusSuppressed {
		return ocsfStatusSupp, ocsfActivityNew
	}
	return ocsfStatusNew, ocsfActivityNew
}

// ocsfMapped are the Log Service keys an OCSF finding carries in its own
// attributes; every other key goes to unmapped, so nothing is lost.
var ocsfMapped = map[string]bool{
	"finding_uid": true, "rule_id": true, "title": true, "severity": true, "status": true,
	"status_detail": true, "region": true, "owner_account_id": true, "vpn_connection_id": true,
	"remediation": true, "observed_at": true, "first_seen_at": true, "lifecycle": true,
}

// writeOCSF writes one OCSF Compliance Finding per line.
func writeOCSF(w io.Writer, findings []finding.Finding, product string) error {
	enc := json.NewEncoder(w)
	for i := range findings {
		keys, m := fields(&findings[i])
		statusID, activityID := ocsfState(m["status"], m["lifecycle"], m["first_seen_at"], m["observed_at"])
		sev, ok := ocsfSeverity[m["severity"]]
		if !ok {
			sev.name = "Unknown"
		}
		comp := ocsfCompliance[m["status"]]
		if comp.name == "" {
			comp.name = "Unknown"
		}
		info := map[string]any{
			"uid":   m["finding_uid"],
			"title": m["title"],
			"desc":  m["status_detail"],
			"types": []string{m["rule_id"]},
		}
		if t, ok := epochMillis(m["first_seen_at"]); ok {
			info["first_seen_time"] = t
		}
		if t, ok := epochMillis(m["observed_at"]); ok {
			info["last_seen_time"] = t
		}
		unmapped := map[string]string{}
		for _, k := range keys {
			if !ocsfMapped[k] && m[k] != "" {
				unmapped[k] = m[k]
			}
		}
		ev := map[string]any{
			"class_uid":     ocsfClassUID,
			"class_name":    "Compliance Finding",
			"category_uid":  ocsfCategoryUID,
			"category_name": "Findings",
			"activity_id":   activityID,
			"activity_name": ocsfActivityNames[activityID],
			"type_uid":      ocsfClassUID*100 + activityID,
			"type_name":     "Compliance Finding: " + ocsfActivityNames[activityID],
			"severity_id":   sev.id,
			"severity":      sev.name,
			"status_id":     statusID,
			"status":        ocsfStatusNames[statusID],
			"status_code":   m["status"],
			"status_detail": m["status_detail"],
			"message":       m["title"],
			"metadata": map[string]any{
				"version": ocsfVersion,
				"product": map[string]string{"name": "vpnauthz", "vendor_name": "vpnauthz", "version": product},
			},
			"finding_info": info,
			"compliance": map[string]any{
				"control":       m["rule_id"],
				"standards":     []string{"vpnauthz"},
				"status_id":     comp.id,
				"status":        comp.name,
				"status_detail": m["status_detail"],
			},
			"remediation": map[string]string{"desc": m["remediation"]},
			"cloud": map[string]any{
				"provider": "AlibabaCloud",
				"region":   m["region"],
				"account":  map[string]string{"uid": m["owner_account_id"]},
			},
			"resources": []map[string]any{{
				"uid":    m["vpn_connection_id"],
				"type":   "IPsec-VPN connection",
				"region": m["region"],
				"owner":  map[string]string{"account_uid": m["owner_account_id"]},
			}},
			"unmapped": unmapped,
		}
		if t, ok := epochMillis(m["observed_at"]); ok {
			ev["time"] = t
		}
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return nil
}

func epochMillis(s string) (int64, bool) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}
