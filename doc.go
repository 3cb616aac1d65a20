// Package baton is the domain at the centre of baton, a deployment
// coordinator and app host: its types, its rules, and the interfaces its
// adapters implement. It imports only the standard library, and the
// adapters (stores, API, proxy, coordinator, …) import it for the domain's
// types instead of each other.
//
// An App has slots (production, staging, …); a Deployment asks for a new
// Revision of a slot to go live, and every operation that changes what
// serves an app (a deploy, a settings change, a swap, a traffic change) is
// a Deployment of some Kind that goes through the app's one queue and one
// Lease. The lease's fencing token makes a stale holder's writes fail
// (ErrStaleToken), so two operations can never both change an app.
//
// The rules that make baton baton live here, as pure functions the
// adapters call rather than repeat:
//
//   - Admit decides whether a deployment may join its app's queue: the
//     freeze, the Idempotency-Key, a request that would change nothing,
//     and the conflict Policy (queue, fail, cancel, supersede). A store's
//     Enqueue reads the QueueState under the app's lock, calls Admit and
//     applies its Admission.
//   - InterruptedOutcome decides how a deployment whose controller stopped
//     ends: succeeded once its revision serves, failed before.
//   - OpParams are an operation's arguments, one type per Kind, kept in
//     Deployment.Params as the JSON EncodeParams writes; DecodeParams
//     reads it back and says what is wrong rather than yield zero values.
//   - State and Phase are the deployment state machine; Error, with its
//     codes, is the one error type, which the API maps to HTTP statuses.
//
// Store (store.go) is the persistence contract, with one test suite
// (storetest) that every implementation passes: sqlite, postgres and the
// secretstore wrapper. Deployer is what the front ends that take code in
// (the REST API, git push, the Kudu API) need of the coordinator.
package baton
