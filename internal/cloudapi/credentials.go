package cloudapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String shows the access key id only: credentials end up in logs and error
// messages through fmt and must not carry their secret there.
func (c Credentials) String() string {
	return fmt.Sprintf("{AccessKeyID:%s AccessKeySecret:%s SecurityToken:%s}",
		c.AccessKeyID, redact(c.AccessKeySecret), redact(c.SecurityToken))
}

// GoString is String for %#v.
func (c Credentials) GoString() string {
	return fmt.Sprintf("cloudapi.Credentials{AccessKeyID:%q, AccessKeySecret:%q, SecurityToken:%q}",
		c.AccessKeyID, redact(c.AccessKeySecret), redact(c.SecurityToken))
}

// Format redacts for every verb: without it, verbs such as %d or %x would
// print the fields one by one, secret included.
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

// LogValue redacts the credentials in log/slog records.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_key_id", c.AccessKeyID),
		slog.String("access_key_secret", redact(c.AccessKeySecret)),
		slog.String("security_token", redact(c.SecurityToken)),
	)
}

// MarshalJSON redacts too: JSON log handlers encode nested structs (a whole
// Request, say) with encoding/json, not with LogValue.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AccessKeyID     string
		AccessKeySecret string `json:",omitempty"`
		SecurityToken   string `json:",omitempty"`
	}{c.AccessKeyID, redact(c.AccessKeySecret), redact(c.SecurityToken)})
}

// Credentials are an access key, with an STS token when SecurityToken is
// set. However they are printed, logged or marshalled, they show the key id
// only.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
}
