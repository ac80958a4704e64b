// Command rampolicy prints the RAM policy of the function's role (or, with
// -setup, of whoever runs setup-sls and setup-state) for the features the
// deployment's environment configures. scripts/ram-policy.sh runs it; the
// actions come from vpnauthz/internal/ramactions.
package main

import (
	"flag"
	"fmt"
	"os"

	"vpnauthz/internal/ramactions"
)

const usage = `usage: scripts/ram-policy.sh [-setup] ACCOUNT_ID SLS_REGION SLS_PROJECT SLS_LOGSTORE [REGION ...]

Prints the function role's RAM policy: the VPC reads (in the REGIONs given,
or every region), log:PostLogStoreLogs on the findings logstore and the
function's own log, and, only when the environment configures them:
  VPNAUTHZ_FAILURE_DESTINATION   mns:SendMessage / mns:PublishMessage / fc:InvokeFunction on it
  ACCOUNTS (others than ACCOUNT_ID)  sts:AssumeRole on MEMBER_ROLE_NAME in them
  ACCOUNTS=resource-directory    also resourcemanager:ListAccounts
  ACCOUNTS longer than FANOUT_ACCOUNTS_PER_INVOCATION, or resource-directory
                                 fc:InvokeFunction on VPNAUTHZ_FUNCTION_NAME in VPNAUTHZ_REGION
  STATE_STORE                    ots:GetRange, ots:BatchWriteRow on the table
  TRAIL_PROJECT (TRAIL_LOGSTORE) log:GetCursorOrData on the trail logstore
-setup prints instead what setup-sls and setup-state need.
`

func main() {
	fs := flag.NewFlagSet("ram-policy", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	setup := fs.Bool("setup", false, "the policy of whoever runs setup-sls and setup-state")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	cfg, err := ramactions.ConfigFromEnv(fs.Args(), os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ram-policy: %v\n\n%s", err, usage)
		os.Exit(2)
	}
	render := ramactions.FunctionPolicy
	if *setup {
		render = ramactions.SetupPolicy
	}
	doc, err := render(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ram-policy: %v\n", err)
		os.Exit(2)
	}
	os.Stdout.Write(doc.JSON())
}
