package function

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"vpnauthz/events"
	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/cred"
	"vpnauthz/internal/emulator/fcapiemu"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/otsemu"
	"vpnauthz/internal/emulator/rmemu"
	"vpnauthz/internal/emulator/slsemu"
	"vpnauthz/internal/emulator/stsemu"
	"vpnauthz/internal/scan"
	"vpnauthz/internal/statestore"
)

const (
	wiredMember  = "2000000000000001"
	wiredLeaving = "2000000000000002"
	wiredDenied  = "2000000000000003"
	externalID   = "org-ext-7f3a"
)

// orgCloud is the emulated cloud of an organisation: the directory, STS
// with the members' roles, FC's OpenAPI, Tablestore, and the trail's
// logstore, all accepting the function's credential.
type orgCloud struct {
	*emulator.Cloud
	rm   *rmemu.Server
	sts  *stsemu.Server
	fc   *fcapiemu.Server
	ots  *otsemu.Server
	env  map[string]string
	cred cred.Credential
}

func startOrgCloud(t *testing.T) *orgCloud {
	t.Helper()
	c := startEmulator(t)
	o := &orgCloud{Cloud: c, cred: c.Credentials}
	o.cred.Account = c.AccountID
	var err error
	o.rm, err = rmemu.New(rmemu.Options{Credentials: []cred.Credential{o.cred}, MasterAccountID: c.AccountID,
		Accounts: []rmemu.Account{
			{AccountId: wiredMember, Status: "CreateSuccess", Type: "ResourceAccount"},
			{AccountId: wiredDenied, Status: "InviteSuccess", Type: "CloudAccount"},
			{AccountId: wiredLeaving, Status: "Removing", Type: "ResourceAccount"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.rm.Close)
	o.sts, err = stsemu.New(stsemu.Options{Credentials: []cred.Credential{o.cred}, DefaultAccount: c.AccountID,
		Roles: []stsemu.Role{
			{Account: wiredMember, Name: "vpnauthz-auditor", Trusted: []string{c.AccountID}, ExternalID: externalID},
			{Account: wiredDenied, Name: "vpnauthz-auditor", Trusted: []string{"1999999999999999"}},
		},
		Publish: []*cred.Store{c.VPC.Credentials()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.sts.Close)
	rt, err := fcemu.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	o.fc, err = fcapiemu.New(fcapiemu.Options{Credentials: []cred.Credential{o.cred}, Runtime: rt,
		AsyncRetries: -1, DeliveryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.fc.Close)
	o.ots, err = otsemu.New(otsemu.Options{Credentials: []cred.Credential{o.cred}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.ots.Close)
	o.env = map[string]string{
		"SCAN_TARGETS":             "cn-hangzhou:*",
		"ACCOUNTS":                 "resource-directory",
		"TRUST_ORGANIZATION":       "true",
		"MEMBER_ROLE_EXTERNAL_ID":  externalID,
		"STS_ENDPOINT":             o.sts.URL(),
		"RESOURCEMANAGER_ENDPOINT": o.rm.URL(),
		"FC_ENDPOINT":              o.fc.URL(),
		"STATE_STORE":              "tablestore://" + o.ots.Instance() + "/findings",
		"TABLESTORE_ENDPOINT":      o.ots.Endpoint(),
		"SLS_ENDPOINT":             c.SLS.Endpoint(),
	}
	return o
}

func (o *orgCloud) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := o.env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (o *orgCloud) invocation() handler.Invocation {
	return handler.Invocation{
		RequestID: "1-wiring", Region: o.Region, AccountID: o.AccountID, FunctionName: "vpnauthz",
		Credentials: scan.Credentials{AccessKeyID: o.cred.AccessKeyID, AccessKeySecret: o.cred.AccessKeySecret, SecurityToken: o.cred.SecurityToken},
	}
}

// Every client the handler is given reaches its service through the real
// SDK, with the invocation's credentials.
func TestWiringReachesEveryService(t *testing.T) {
	o := startOrgCloud(t)
	var opts handler.Options
	wireOrganisation(o.config(t), &opts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv := o.invocation()

	t.Run("directory", func(t *testing.T) {
		l, err := opts.ListDirectory(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		joined := map[string]bool{}
		for _, m := range l.Members {
			joined[m.ID] = m.Joined
		}
		if l.MasterAccountID != o.AccountID || !joined[wiredMember] || !joined[wiredDenied] || joined[wiredLeaving] || !joined[o.AccountID] {
			t.Errorf("listing %+v", l)
		}
	})
	t.Run("members", func(t *testing.T) {
		m, err := opts.NewMembers(ctx, inv, "0123abcd")
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.Credentials(ctx, wiredMember)
		if err != nil || !strings.HasPrefix(c.AccessKeyID, "STS.") || c.SecurityToken == "" {
			t.Fatalf("credentials of the member: %v, %v", c, err)
		}
		if again, _ := m.Credentials(ctx, wiredMember); again != c {
			t.Error("a second ask for the same member assumed the role again")
		}
		if _, err := m.Credentials(ctx, wiredDenied); err == nil || !strings.Contains(err.Error(), wiredDenied) {
			t.Errorf("a member whose role does not trust the function: %v", err)
		}
		calls := o.sts.Calls()
		if len(calls) < 2 || !calls[0].ExternalIDSent || !strings.HasPrefix(calls[0].RoleSessionName, "vpnauthz-0123abcd") ||
			calls[0].CallerAccount != o.AccountID {
			t.Errorf("AssumeRole calls %+v", calls)
		}
		if n := o.sts.Stats().ByRoleAccount[wiredMember]; n != 1 {
			t.Errorf("%d tokens for the member, want 1", n)
		}
	})
	t.Run("dispatch", func(t *testing.T) {
		batches := [][]string{{o.AccountID, wiredMember}, {wiredDenied}}
		for try := range 2 {
			got, err := opts.Dispatch(ctx, inv, "0123abcd", batches)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range got {
				if d.AlreadyStarted != (try == 1) {
					t.Errorf("try %d: batch %+v", try+1, d)
				}
			}
		}
		st := o.fc.Stats()
		if st.Async != 2 || st.Duplicates != 2 {
			t.Errorf("FC stats %+v, want 2 async invocations and 2 refused repeats", st)
		}
		for _, task := range o.fc.Tasks() {
			var p map[string]any
			if err := json.Unmarshal(task.Payload, &p); err != nil || p["scanId"] != "0123abcd" || p["batches"] != 2.0 || task.Function != "vpnauthz" {
				t.Errorf("task %s: payload %s", task.ID, task.Payload)
			}
		}
	})
	t.Run("state", func(t *testing.T) {
		st, err := opts.NewState(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		store := st.(*statestore.Store)
		if _, err := store.Setup(ctx); err != nil {
			t.Fatalf("setup through the wired store: %v", err)
		}
		if recs, err := store.Load(ctx, o.AccountID, o.Region); err != nil || len(recs) != 0 {
			t.Errorf("load: %v, %v", recs, err)
		}
	})
	t.Run("trail", func(t *testing.T) {
		o.SLS.CreateProject("vpnauthz-trail")
		if err := o.SLS.CreateLogStore("vpnauthz-trail", "actiontrail"); err != nil {
			t.Fatal(err)
		}
		rec := `{"eventId":"e1","eventName":"GrantInstanceToTransitRouter","eventType":"ApiCall","acsRegion":"cn-hangzhou",` +
			`"recipientAccountId":"` + wiredMember + `","userIdentity":{"accountId":"` + wiredMember + `"},` +
			`"requestParameters":{"RegionId":"cn-hangzhou","InstanceType":"VPN","InstanceId":"vco-wired0000001"}}`
		begin, end, err := o.SLS.AppendGroups("vpnauthz-trail", "actiontrail", 0, slsemu.ActionTrailGroup(slsemu.ActionTrailLog(time.Now(), rec)))
		if err != nil {
			t.Fatal(err)
		}
		ev := slsEventFor("vpnauthz-trail", "actiontrail", begin, end)
		res, err := opts.ReadTrail(ctx, inv, ev)
		if err != nil {
			t.Fatal(err)
		}
		if res.Records != 1 || res.Kept != 1 || len(res.Scans) != 1 || res.Scans[0].Account != wiredMember || res.Scans[0].ConnectionID != "vco-wired0000001" {
			t.Errorf("trail %+v", res)
		}
	})
}

func slsEventFor(project, logstore, begin, end string) *events.SLSEvent {
	shard := 0
	ep := "http://cn-hangzhou-intranet.log.aliyuncs.com"
	return &events.SLSEvent{Source: &events.SLSSource{
		Endpoint: &ep, ProjectName: &project, LogstoreName: &logstore, ShardID: &shard, BeginCursor: &begin, EndCursor: &end,
	}}
}

// Without STATE_STORE the scans are stateless: no store is opened.
func TestWiringStateless(t *testing.T) {
	o := startOrgCloud(t)
	delete(o.env, "STATE_STORE")
	var opts handler.Options
	wireOrganisation(o.config(t), &opts)
	if opts.NewState != nil {
		t.Error("a state store is wired without STATE_STORE")
	}
}
