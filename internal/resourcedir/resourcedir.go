// Package resourcedir lists the members of a Resource Directory:
// ResourceManager (2020-03-31) GetResourceDirectory for the management
// account and ListAccounts, paged to the end. The ResourceManager SDK module
// is not available to the build, so the calls go through darabonba-openapi's
// generic CallApi, as the generated client would make them (RPC style, V3
// signature).
package resourcedir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"

	"vpnauthz/internal/cloudapi"
	"vpnauthz/internal/endpoint"
	rpc "vpnauthz/internal/openapi"
	"vpnauthz/internal/retry"
)

const (
	apiVersion = "2020-03-31"
	// DefaultEndpoint is ResourceManager's central endpoint.
	DefaultEndpoint = "resourcemanager.aliyuncs.com"
	// MaxPageSize is ListAccounts' largest page.
	MaxPageSize = 100
)

// Account is a member of the directory.
type Account struct {
	ID          string
	DisplayName string
	Status      string // e.g. CreateSuccess, InviteSuccess, PromoteSuccess, CreateFailed, Removing
	Type        string // ResourceAccount or CloudAccount
}

// Joined reports whether the member is in a state that can be scanned.
func (a Account) Joined() bool { return JoinedStatus(a.Status) }

// JoinedStatus reports whether a ListAccounts Status is a joined member:
// created, invited or promoted successfully.
func JoinedStatus(status string) bool {
	switch status {
	case "CreateSuccess", "InviteSuccess", "PromoteSuccess":
		return true
	}
	return false
}

// Directory is a Resource Directory and every member ListAccounts returns,
// joined or not, in listing order (the management account included).
type Directory struct {
	ID              string
	MasterAccountID string
	Accounts        []Account
}

// Options configure List.
type Options struct {
	// Endpoint is RESOURCEMANAGER_ENDPOINT; zero: DefaultEndpoint.
	Endpoint    endpoint.Endpoint
	Credentials cloudapi.Credentials
	PageSize    int // default MaxPageSize
	// Retry bounds the attempts and pauses of each call; its zero fields
	// are cloudapi's defaults.
	Retry      retry.Policy
	HTTPClient *http.Client
}

// List reads the directory: its management account, then every page of
// ListAccounts. A page that keeps failing is an error naming the page.
func List(ctx context.Context, opts Options) (Directory, error) {
	ep := opts.Endpoint
	if !ep.IsZero() && ep.Scheme != "https" && !ep.Loopback {
		return Directory{}, fmt.Errorf("RESOURCEMANAGER_ENDPOINT %s: plain http is only for a loopback host", ep)
	}
	if ep.IsZero() {
		ep = endpoint.Endpoint{Scheme: "https", Host: DefaultEndpoint}
	}
	if opts.PageSize <= 0 || opts.PageSize > MaxPageSize {
		opts.PageSize = MaxPageSize
	}
	opts.Retry = opts.Retry.Defaults()
	hc := opts.HTTPClient
	if hc == nil {
		hc = rpc.NewHTTPClient(ep, cloudapi.DefaultCallTimeout)
	}
	c := caller{ep: ep, hc: hc, opts: opts}

	var rd struct {
		ResourceDirectory struct {
			ResourceDirectoryId string
			MasterAccountId     string
		}
	}
	if err := c.call(ctx, operation{Action: "GetResourceDirectory"}, nil, &rd); err != nil {
		return Directory{}, err
	}
	dir := Directory{ID: rd.ResourceDirectory.ResourceDirectoryId, MasterAccountID: rd.ResourceDirectory.MasterAccountId}
	if dir.MasterAccountID == "" {
		return Directory{}, errors.New("GetResourceDirectory: the answer names no MasterAccountId")
	}

	seen := map[string]bool{}
	total := -1
	for page := 1; ; page++ {
		var body struct {
			TotalCount int
			Accounts   struct {
				Account []struct {
					AccountId, DisplayName, Status, Type string
				}
			}
		}
		q := map[string]*string{"PageNumber": dara.String(strconv.Itoa(page)), "PageSize": dara.String(strconv.Itoa(opts.PageSize))}
		if err := c.call(ctx, operation{Action: "ListAccounts"}, q, &body); err != nil {
			pages := "?"
			if total >= 0 {
				pages = strconv.Itoa((total + opts.PageSize - 1) / opts.PageSize)
			}
			return Directory{}, fmt.Errorf("list the resource directory, page %d of %s: %w", page, pages, err)
		}
		total = body.TotalCount
		for _, a := range body.Accounts.Account {
			// A member moving between pages while they are read is listed once.
			if a.AccountId == "" || seen[a.AccountId] {
				continue
			}
			seen[a.AccountId] = true
			dir.Accounts = append(dir.Accounts, Account{ID: a.AccountId, DisplayName: a.DisplayName, Status: a.Status, Type: a.Type})
		}
		if len(body.Accounts.Account) < opts.PageSize || page*opts.PageSize >= total {
			return dir, nil
		}
	}
}

type caller struct {
	ep   endpoint.Endpoint
	hc   *http.Client
	opts Options
}

// operation names the API a call makes, as the Action of the generic
// client's request (the RAM policy's tests find the calls by it).
type operation struct{ Action string }

// call makes one RPC call through the retry loop, a client per attempt
// bound to the attempt's context, and decodes the body into out.
func (c caller) call(ctx context.Context, op operation, query map[string]*string, out any) error {
	action := op.Action
	params := &openapiutil.Params{
		Action: dara.String(action), Version: dara.String(apiVersion), Protocol: dara.String("HTTPS"),
		Pathname: dara.String("/"), Method: dara.String("POST"), AuthType: dara.String("AK"),
		Style: dara.String("RPC"), ReqBodyType: dara.String("formData"), BodyType: dara.String("json"),
	}
	return retry.Do(ctx, c.opts.Retry, retry.Hooks{}, func(ctx context.Context) error {
		client, err := openapi.NewClient(rpc.Config(ctx, c.opts.Credentials, c.ep, "", c.hc))
		if err != nil {
			return fmt.Errorf("resourcemanager client: %w", cloudapi.Local(err))
		}
		res, err := client.CallApiWithCtx(ctx, params, &openapiutil.OpenApiRequest{Query: query}, &dara.RuntimeOptions{})
		if err != nil {
			return rpc.MapError(ctx, action, err)
		}
		data, err := json.Marshal(res["body"])
		if err == nil {
			err = json.Unmarshal(data, out)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", action, &cloudapi.DecodeError{HTTPStatus: http.StatusOK, Err: err})
		}
		return nil
	})
}
