package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"vpnauthz/handler"
	"vpnauthz/internal/config"
	"vpnauthz/internal/emulator"
	"vpnauthz/internal/emulator/fcemu"
	"vpnauthz/internal/emulator/vpcemu"
	"vpnauthz/internal/function"
	"vpnauthz/internal/scan"
)

// Fanout is what one coordinator invocation of a fanned-out organisation
// scan did, as the emulated FC OpenAPI counted it.
type Fanout struct {
	Accounts        int // in the coordinator's answer
	Batches         int
	InvokeFunction  int // calls the FC OpenAPI answered
	AsyncAccepted   int
	AccountsInTasks int // distinct accounts over every task's payload
	LargestTask     int // accounts in the largest task
}

// MeasureFanout runs the function's coordinator in this process, wired as FC
// wires it, on an emulated organisation of accounts accounts (the function's
// own and accounts-1 members listed by the Resource Directory) with
// FANOUT_ACCOUNTS_PER_INVOCATION=perInvocation, and counts the InvokeFunction
// calls it makes. The workers are not run: the measure is the dispatch.
func MeasureFanout(ctx context.Context, accounts, perInvocation int) (Fanout, error) {
	rt, err := fcemu.New()
	if err != nil {
		return Fanout{}, err
	}
	defer rt.Close()
	org := &emulator.Organization{RoleName: OrgRoleName, ExternalID: OrgExternalID}
	for i := 1; i < accounts; i++ {
		org.Members = append(org.Members, emulator.Member{AccountID: MemberID(i)})
	}
	own := &vpcemu.Inventory{AccountID: AccountID, Regions: map[string][]vpcemu.Connection{Regions[0]: nil}}
	c, err := emulator.Start(emulator.Options{Inventory: own, Organization: org, FCRuntime: rt, NoStateTable: true})
	if err != nil {
		return Fanout{}, err
	}
	defer c.Close()

	env := c.Env()
	env["ACCOUNTS"] = "resource-directory"
	env["MEMBER_ROLE_NAME"], env["MEMBER_ROLE_EXTERNAL_ID"] = OrgRoleName, OrgExternalID
	env["FANOUT_ACCOUNTS_PER_INVOCATION"] = strconv.Itoa(perInvocation)
	env["SCAN_TARGETS"] = Regions[0] + ":*"
	cfg, cfgErr := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if cfgErr != nil {
		return Fanout{}, fmt.Errorf("the coordinator's configuration: %w", cfgErr)
	}
	h := function.NewHandler(cfg, nil, slog.New(slog.NewJSONHandler(io.Discard, nil)), function.Options{Fallback: io.Discard})
	res, err := h.Handle(ctx, handler.Invocation{
		RequestID: "bench-fanout-coordinator", Region: c.Region, AccountID: c.AccountID,
		Credentials: scan.Credentials{AccessKeyID: c.Credentials.AccessKeyID, AccessKeySecret: c.Credentials.AccessKeySecret,
			SecurityToken: c.Credentials.SecurityToken},
		FunctionName: emulator.DefaultFunctionName,
	}, timerEvent)
	if err != nil {
		return Fanout{}, fmt.Errorf("the coordinator: %w", err)
	}
	sr, ok := res.(*handler.ScanResult)
	if !ok || sr.Fanout == nil {
		return Fanout{}, fmt.Errorf("the coordinator answered %T %+v, not a fan-out", res, res)
	}
	st := c.FC.Stats()
	out := Fanout{Accounts: sr.Fanout.Accounts, Batches: sr.Fanout.Batches, InvokeFunction: st.Calls, AsyncAccepted: st.Async}
	seen := map[string]bool{}
	for _, task := range c.FC.Tasks() {
		var p struct{ Accounts []string }
		if err := json.Unmarshal(task.Payload, &p); err != nil {
			return Fanout{}, fmt.Errorf("task %s payload %.200s: %w", task.ID, task.Payload, err)
		}
		out.LargestTask = max(out.LargestTask, len(p.Accounts))
		for _, a := range p.Accounts {
			seen[a] = true
		}
	}
	out.AccountsInTasks = len(seen)
	return out, nil
}
