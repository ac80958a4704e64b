package bench

import (
	"context"
	"testing"
	"time"
)

// The figure of the performance brief: 2,000 accounts dispatched by one
// coordinator in at most 50 InvokeFunction calls. That the workers' findings
// equal one unbatched scan's (by finding_uid and status) is
// internal/e2e's TestOrganisationFanout, on the built binary.
func TestFanoutOf2000Accounts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := MeasureFanout(ctx, 2000, 50)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", f)
	if f.Accounts != 2000 || f.Batches != 40 || f.AsyncAccepted != 40 || f.AccountsInTasks != 2000 || f.LargestTask != 50 {
		t.Errorf("fan-out %+v: want 2,000 accounts in 40 tasks of at most 50, each account once", f)
	}
	if f.InvokeFunction > 50 {
		t.Errorf("%d InvokeFunction calls, want at most 50", f.InvokeFunction)
	}
}
