// Package cli is baton's command line: `baton serve` and the commands that
// talk to a server through the API client.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// Exit codes, for CI scripts.
const (
	ExitOK        = 0
	ExitError     = 1 // usage or unexpected error
	ExitConflicts = 2 // status --check found conflicts
	ExitFailed    = 3 // the deployment or swap failed
	ExitCancelled = 4 // cancelled or superseded
	ExitRefused   = 5 // refused: 409 conflict policy, 423 frozen, 429 queue full or rate limit, 422 unusable request
	ExitTimeout   = 6 // timed out waiting
	// ExitInterrupted: Ctrl-C (128+SIGINT); what the command started goes on.
	ExitInterrupted = 130
)

const exitCodesHelp = `Exit codes:
  0  done
  1  usage or unexpected error
  2  status --check found conflicts
  3  the operation ran and failed (a deployment, swap, settings change,
     traffic change, stabilize, rollback, scale or revision operation)
  4  cancelled or superseded
  5  refused, nothing ran (409 conflict policy or wrong state, 423 frozen,
     429 queue full or rate limit, 422 unusable request)
  6  timed out waiting
  130  interrupted (Ctrl-C); an operation already queued goes on on the server`

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// env is what every command shares.
type env struct {
	url    string
	token  string // --token
	asJSON bool
	stdout io.Writer
	stderr io.Writer
	// tokenFrom says where the token came from, for the hint after a 401.
	tokenFrom string
	// width, when set, is the terminal width tables are fitted to (tests).
	width int
}

func (e *env) client() *api.Client {
	c := api.NewClient(e.url)
	c.Token, e.tokenFrom = resolveToken(e.token, e.url)
	return c
}

// printJSON writes v as indented JSON.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Run executes the CLI with args and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitError
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || baton.ErrorCode(err) == baton.EUNAVAILABLE):
		// Ctrl-C ended a wait or a request (the client reports a request
		// cut short as the server unreachable).
		code, err = ExitInterrupted, errors.New("interrupted")
	default:
		code = exitFor(err)
	}
	fmt.Fprintln(stderr, describeError(err))
	if baton.ErrorCode(err) == baton.EUNAUTHORIZED {
		fmt.Fprintln(stderr, tokenHint(e.tokenFrom))
	}
	return code
}

// Serves reports whether args run 'baton serve', the long-running server,
// which main starts again tuned for serving (internal/schedtune) before
// anything else runs.
func Serves(args []string) bool {
	cmd, _, err := newRoot(&env{stdout: io.Discard, stderr: io.Discard}).Find(args)
	return err == nil && cmd.Name() == "serve"
}

// exitFor picks the exit code of an API error.
func exitFor(err error) int {
	switch baton.ErrorCode(err) {
	case baton.ECONFLICT, baton.EFROZEN, baton.EQUEUEFULL, baton.ERATELIMITED, baton.EUNPROCESSABLE:
		return ExitRefused
	}
	return ExitError
}

// describeError renders an error as a paragraph a person can act on.
func describeError(err error) string {
	var e *baton.Error
	if !errors.As(err, &e) {
		return "error: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "error: %s", e.Message)
	if c := e.Conflict; c != nil && c.Holder != nil {
		h := c.Holder
		fmt.Fprintf(&b, "\n\n  holder:   deployment %s (%s", h.ID, h.State)
		if h.Phase != "" {
			fmt.Fprintf(&b, ", phase %s", h.Phase)
		}
		b.WriteString(")")
		if h.StartedAt != nil {
			fmt.Fprintf(&b, "\n  started:  %s (%ds ago)", h.StartedAt.Local().Format("15:04:05"), c.RunningForSeconds)
		}
		if h.Author != "" {
			fmt.Fprintf(&b, "\n  author:   %s", h.Author)
		}
		if h.Commit != "" {
			fmt.Fprintf(&b, "\n  commit:   %s", h.Commit)
		}
		if h.Message != "" {
			fmt.Fprintf(&b, "\n  message:  %s", h.Message)
		}
		fmt.Fprintf(&b, "\n  queued:   %d more", c.QueueLength)
	}
	if e.RetryAfterSeconds > 0 {
		fmt.Fprintf(&b, "\n  retry in: about %ds", e.RetryAfterSeconds)
	}
	return b.String()
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "baton",
		Short: "Deploy apps with zero downtime and no deployment conflicts",
		Long: `baton is a deployment coordinator and app host in one binary.

Run the server with 'baton serve'; every other command talks to it through
its API (BATON_URL, default http://127.0.0.1:7070) with an access token:
--token, else BATON_TOKEN, else, for a server on this machine, the admin
token in $BATON_DATA/admin.token or ./baton-data/admin.token.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defURL := os.Getenv("BATON_URL")
	if defURL == "" {
		defURL = "http://127.0.0.1:7070"
	}
	root.PersistentFlags().StringVar(&e.url, "url", defURL, "baton API address (env BATON_URL)")
	root.PersistentFlags().StringVar(&e.token, "token", "", "access token (env BATON_TOKEN; default: the local server's admin token file)")
	output := root.PersistentFlags().StringP("output", "o", "table", "output format of read commands: table (fitted to the terminal) or json (everything; same as --json)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		switch *output {
		case "json":
			e.asJSON = true
		case "table", "":
		default:
			return fmt.Errorf("-o %q: use table or json", *output)
		}
		return nil
	}
	root.AddCommand(newServeCmd(e), newAppsCmd(e), newDeployCmd(e), newDeploymentsCmd(e), newLogsCmd(e), newLocksCmd(e),
		newRevisionsCmd(e), newTrafficCmd(e), newStabilizeCmd(e), newRollbackCmd(e), newScaleCmd(e), newSlotsCmd(e), newDomainsCmd(e), newConfigCmd(e), newSwapCmd(e),
		newStatusCmd(e), newWaitCmd(e), newResourcesCmd(e), newGitRemoteCmd(e), newControllersCmd(e), newHostsCmd(e))
	root.AddCommand(newFreezeCmds(e)...)
	root.AddCommand(newTokensCmd(e), newHooksCmd(e), newAuditCmd(e), newGCCmd(e), newBackupCmd(e), newRestoreCmd(e), newServiceCmd(e), newVersionCmd(e))
	return root
}

// addJSON adds --json to a read command.
func addJSON(cmd *cobra.Command, e *env) {
	cmd.Flags().BoolVar(&e.asJSON, "json", false, "print JSON instead of a table")
}
