package slssink

import (
	"context"
	"errors"
	"slices"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/finding"
)

// Logstore settings used when Setup creates it.
const (
	logstoreTTLDays = 365 // a year of findings for audits
	logstoreShards  = 2
	maxSplitShards  = 64
)

// Error codes of the admin calls that mean "already done".
const (
	codeLogStoreExists = "LogStoreAlreadyExist"
	codeIndexExists    = "IndexAlreadyExist"
)

// Fields whose values are identifiers or enumerations: one token each, so
// that "vco-abc" or "2026-01-31T10:00:00Z" match whole, as well as numbers
// kept as long so that SQL can add them up without casts.
var (
	numericFields = []string{
		"authorization_age_days", "duration_ms", "connections", "authorizations",
		"pass", "fail", "error", "suppressed", "api_calls", "api_retries",
		"throttled", "findings_delivered", "connections_in_scope", "changes", "accounts",
		"batch", "batches",
	}
	freeTextFields = []string{
		"title", "status_detail", "remediation", "exception_reason",
	}
	// idTokens split only on white space and list separators.
	idTokens = []string{" ", "\t", "\n", "\r", ",", ";"}
)

// setupLogstore creates the logstore and a field index for every finding and summary
// field, idempotently (vpnauthz setup-sls): an existing logstore is kept, an
// existing index is replaced by this one.
func setupLogstore(ctx context.Context, opts Options) error {
	if opts.Project == "" || opts.Logstore == "" {
		return errors.New("SLS setup: project and logstore are required")
	}
	opts.setDefaults()
	calls, err := newCaller(&opts)
	if err != nil {
		return err
	}
	where := opts.Project + "/" + opts.Logstore

	err = calls.do(ctx, "CreateLogStore "+where, func(client *sls.Client) error {
		return client.CreateLogStore(opts.Project, opts.Logstore, logstoreTTLDays, logstoreShards, true, maxSplitShards)
	})
	if err != nil && !hasCode(err, codeLogStoreExists) {
		return err
	}

	index := Index()
	err = calls.do(ctx, "CreateIndex "+where, func(client *sls.Client) error {
		return client.CreateIndex(opts.Project, opts.Logstore, index)
	})
	if err == nil {
		return nil
	}
	if !hasCode(err, codeIndexExists) {
		return err
	}
	return calls.do(ctx, "UpdateIndex "+where, func(client *sls.Client) error {
		return client.UpdateIndex(opts.Project, opts.Logstore, index)
	})
}

func hasCode(err error, code string) bool {
	var ae *cloudapi.APIError
	return errors.As(err, &ae) && ae.Code == code
}

// Index is the index Setup gives the logstore: full text on the whole log and
// a field index with analytics (doc_value) on every finding and summary key.
func Index() sls.Index {
	keys := make(map[string]sls.IndexKey, len(finding.Keys)+len(summaryKeys))
	for _, k := range indexKeyNames() {
		switch {
		case slices.Contains(numericFields, k):
			keys[k] = sls.IndexKey{Type: "long", Token: []string{}, DocValue: true}
		case slices.Contains(freeTextFields, k):
			keys[k] = sls.IndexKey{Type: "text", Token: sls.CreateDefaultIndex().Line.Token, DocValue: true}
		default:
			keys[k] = sls.IndexKey{Type: "text", Token: idTokens, DocValue: true}
		}
	}
	return sls.Index{Keys: keys, Line: sls.CreateDefaultIndex().Line}
}
