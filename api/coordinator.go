package api

import (
	"context"

	"github.com/batonhq/baton"
)

// Coordinator is what the API needs of the coordinator: the operations it
// starts and the runtime state it reports. coordinator.Coordinator
// implements it (checked where server wires them together); the API uses
// only the root package's types, so it does not import the coordinator.
type Coordinator interface {
	baton.Deployer

	CreateApp(ctx context.Context, name string) (baton.App, error)
	DeleteApp(ctx context.Context, name string) error
	CreateSlot(ctx context.Context, app, slot string) (baton.Slot, error)
	DeleteSlot(ctx context.Context, app, slot string) error
	// AddDomain claims a custom domain for a slot (validated; ECONFLICT
	// naming the owner); RemoveDomain releases it. Routing follows at once.
	AddDomain(ctx context.Context, app, slot, name string) (baton.Domain, error)
	RemoveDomain(ctx context.Context, app, name string) error

	// SubmitOp queues an operation under its conflict policy; Wait
	// returns it once final.
	SubmitOp(ctx context.Context, req baton.OpRequest) (baton.Deployment, error)
	Wait(ctx context.Context, id string) (baton.Deployment, error)
	Cancel(ctx context.Context, id, reason string) (baton.Deployment, error)
	// NextDeployment waits for the app's oldest operation accepted after
	// seq; ok is false when ctx ended first.
	NextDeployment(ctx context.Context, app string, seq int64) (d baton.Deployment, ok bool, err error)
	SetSettings(ctx context.Context, req baton.OpRequest, ch baton.SettingsChange) (baton.Deployment, error)
	Swap(ctx context.Context, req baton.OpRequest, sp baton.SwapParams) (baton.Deployment, error)
	CompleteSwap(ctx context.Context, id string) (baton.Deployment, error)
	// Rollback queues a rollback, refusing at once a target it cannot go
	// back to.
	Rollback(ctx context.Context, req baton.OpRequest, rp baton.RollbackParams) (baton.Deployment, error)

	Freeze(ctx context.Context, app string, f baton.Freeze, cancelRunning bool) (baton.App, error)
	Unfreeze(ctx context.Context, app string) (baton.App, error)
	WaitIdle(ctx context.Context, app string) error
	BreakLock(ctx context.Context, app, why string) (baton.Lease, error)

	Status(ctx context.Context, app string) (baton.AppStatus, error)
	// Statuses is Status for each of apps, in their order.
	Statuses(ctx context.Context, apps []baton.App) ([]baton.AppStatus, error)
	InstanceHealth(rev string) (healthy, total int)
	RevisionLog(app, rev string, max int64) ([]byte, error)
	// AppLogs returns the selected lines of an app's instance output;
	// FollowAppLogs sends them, then every new one, until ctx ends.
	AppLogs(ctx context.Context, q baton.AppLogQuery) ([]baton.AppLogLine, error)
	FollowAppLogs(ctx context.Context, q baton.AppLogQuery, send func([]baton.AppLogLine) error) error
	Resources(ctx context.Context) ([]baton.ResourceStatus, error)
	// Collect removes what the retention policy no longer keeps (with
	// dryRun, only reports it).
	Collect(ctx context.Context, dryRun bool) (baton.GCReport, error)
	Controllers(ctx context.Context) ([]baton.Controller, error)
	// Hosts lists the hosts sharing the store with their state, apps and
	// instances.
	Hosts(ctx context.Context) ([]baton.Host, error)
	// DrainHost records that an operator asked host id to drain (drain)
	// or to take instances again; baton then moves its instances away.
	// ENOTFOUND for an unknown host.
	DrainHost(ctx context.Context, id string, drain bool) error
}
