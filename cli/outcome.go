package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// noun names an operation of kind k in a sentence.
func noun(k baton.Kind) string {
	switch k {
	case baton.KindDeploy, "":
		return "deployment"
	case baton.KindConfig:
		return "settings change"
	case baton.KindTraffic:
		return "traffic change"
	case baton.KindSwap:
		return "swap"
	}
	return string(k)
}

// because is d.Error worded to follow its state: "cancelled: oops" and
// "cancelled by request" are recorded with the state in front, which a
// sentence that already says "is cancelled" must not repeat.
func because(d baton.Deployment) string {
	rest, cut := strings.CutPrefix(d.Error, string(d.State))
	switch {
	case d.Error == "":
		return ""
	case cut && strings.HasPrefix(rest, ": "), cut && strings.HasPrefix(rest, " "):
		return rest
	}
	return ": " + d.Error
}

// resultError maps a finished operation to nil or an exit error: failed is
// exit 3, cancelled or superseded exit 4.
func resultError(d baton.Deployment) error {
	switch d.State {
	case baton.StateSucceeded:
		return nil
	case baton.StateCancelled, baton.StateSuperseded:
		return &exitError{ExitCancelled, fmt.Errorf("%s %s was %s%s", noun(d.Kind), d.ID, d.State, because(d))}
	default:
		return &exitError{ExitFailed, fmt.Errorf("%s %s failed%s\n  full log: baton logs %s", noun(d.Kind), d.ID, because(d), d.ID)}
	}
}

// opOutcome is the exit of an operation the server runs before it answers
// (traffic, stabilize, revision operations): one that ran and failed comes
// back as a 409 problem, but it is exit 3 (or 4), not a refusal; a refusal
// (the policy, a freeze, a full queue) stays exit 5.
func opOutcome(d baton.Deployment, err error) error {
	if d.ID != "" && d.State.Final() && d.State != baton.StateSucceeded {
		return resultError(d)
	}
	return err
}

// succeeded is the line a command prints when its operation succeeded.
func succeeded(d baton.Deployment) string {
	s := fmt.Sprintf("%s %s succeeded", noun(d.Kind), d.ID)
	switch d.Kind {
	case baton.KindDeploy, baton.KindConfig, "":
		if d.Revision != "" {
			s += fmt.Sprintf(": %s serves %s/%s", d.Revision, d.App, d.Slot)
		}
	default:
		if what := summary(d); what != "" {
			s += ": " + what
		}
	}
	return s
}

// summary says in one line what an operation does, from its kind and
// params, for the history tables; a deployment's is its message.
func summary(d baton.Deployment) string {
	var p struct {
		Revision string          `json:"revision"`
		Weights  map[string]int  `json:"weights"`
		Source   string          `json:"source"`
		Target   string          `json:"target"`
		Preview  bool            `json:"preview"`
		Set      []baton.Setting `json:"set"`
		Unset    []string        `json:"unset"`
		// A scale's (baton.ScaleParams).
		Instances  int    `json:"instances"`
		MaxPerHost int    `json:"max_per_host"`
		Rebalance  bool   `json:"rebalance"`
		Reason     string `json:"reason"`
	}
	if d.Params != "" {
		_ = json.Unmarshal([]byte(d.Params), &p)
	}
	var s string
	switch d.Kind {
	case baton.KindDeploy, "":
		return oneLine(d.Message)
	case baton.KindConfig:
		var parts []string
		if len(p.Set) > 0 {
			var keys []string
			for _, st := range p.Set {
				k := st.Key
				var flags []string
				if st.Sticky {
					flags = append(flags, "sticky")
				}
				if st.Secret {
					flags = append(flags, "secret")
				}
				if len(flags) > 0 {
					k += " (" + strings.Join(flags, ", ") + ")"
				}
				keys = append(keys, k)
			}
			parts = append(parts, "set "+strings.Join(keys, ", "))
		}
		if len(p.Unset) > 0 {
			parts = append(parts, "unset "+strings.Join(p.Unset, ", "))
		}
		s = strings.Join(parts, "; ")
	case baton.KindTraffic:
		revs := make([]string, 0, len(p.Weights))
		for r := range p.Weights {
			revs = append(revs, r)
		}
		sort.Strings(revs)
		for i, r := range revs {
			revs[i] = fmt.Sprintf("%s %d%%", r, p.Weights[r])
		}
		s = strings.Join(revs, ", ")
	case baton.KindStabilize:
		if p.Revision != "" {
			s = "keep " + p.Revision + " at 100 %, deactivate the rest"
		} else {
			s = "keep the newest healthy revision at 100 %, deactivate the rest"
		}
	case baton.KindSwap:
		s = p.Source + " ⇄ " + p.Target
		if p.Preview {
			s += " (preview)"
		}
	case baton.KindActivate, baton.KindDeactivate, baton.KindRestart:
		s = string(d.Kind) + " " + p.Revision
	case baton.KindScale:
		s = api.ScaleRequest{Instances: p.Instances, MaxPerHost: p.MaxPerHost}.String()
		if p.Rebalance {
			s = "place the instances again"
			if p.Reason != "" {
				s += ": " + p.Reason
			}
		}
	}
	if m := oneLine(d.Message); m != "" {
		if s == "" {
			return m
		}
		s += " — " + m
	}
	return s
}

// shortCommit shortens a commit id for a table, keeping a -dirty mark.
func shortCommit(c string) string {
	base, dirty := strings.CutSuffix(c, dirtySuffix)
	s := short(base, 10)
	if dirty {
		s += dirtySuffix
	}
	return dash(s)
}

// interrupted is the error of a command whose wait for operation id was
// interrupted (Ctrl-C): the operation goes on on the server, and the user
// must know how to follow or stop it.
func interrupted(e *env, id string, kind baton.Kind) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	state := ""
	if d, err := e.client().Deployment(ctx, id); err == nil {
		if d.State.Final() {
			return &exitError{ExitInterrupted, fmt.Errorf("interrupted; %s %s had already ended: %s%s", noun(d.Kind), id, d.State, because(d))}
		}
		kind, state = d.Kind, string(d.State)
		if d.Phase != "" {
			state += ", phase " + string(d.Phase)
		}
		state = " (" + state + ")"
	}
	cancelCmd := "baton deployments cancel " + id
	if kind == baton.KindSwap {
		cancelCmd = "baton swap cancel " + id
	}
	return &exitError{ExitInterrupted, fmt.Errorf("interrupted: %s %s goes on on the server%s\n  follow it: baton logs -f %s\n  cancel it: %s",
		noun(kind), id, state, id, cancelCmd)}
}
