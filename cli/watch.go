package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// watchStatus follows the event stream of app (every app with app ""):
// the status as it is, then a line per change as it happens, until ctx
// ends. With asJSON, each event is one JSON line.
func watchStatus(ctx context.Context, e *env, app string) error {
	err := e.client().WatchEvents(ctx, app, -1, func(ev api.AppEvent) bool {
		if e.asJSON {
			return json.NewEncoder(e.stdout).Encode(ev) == nil
		}
		printEvent(e.stdout, ev, app == "")
		return true
	})
	if ctx.Err() != nil {
		return nil // interrupted: the normal end of a watch
	}
	return err
}

// printEvent prints one event: a status snapshot in full (one line per
// app on the overview), any other change as a line.
func printEvent(w io.Writer, ev api.AppEvent, overview bool) {
	at := ev.At.Local().Format(time.TimeOnly)
	if ev.Type == "status" {
		if overview {
			printStatusLines(w, []baton.AppStatus{ev.Status})
		} else {
			printStatus(w, ev.Status, nil, ev.At)
			fmt.Fprintln(w)
		}
		return
	}
	st := ev.Status
	fmt.Fprintf(w, "%s %s ", at, ev.App)
	switch ev.Type {
	case "deployment":
		d := ev.Deployment
		fmt.Fprintf(w, "%s %s %s: %s", d.Kind, d.ID, ev.Change, d.State)
		if d.Phase != "" && !d.State.Final() {
			fmt.Fprintf(w, " (%s)", d.Phase)
		}
		if d.Error != "" {
			fmt.Fprintf(w, ": %s", d.Error)
		}
	case "routing":
		fmt.Fprint(w, "routing:")
		for _, s := range st.Slots {
			for _, r := range s.Revisions {
				fmt.Fprintf(w, " %s/%s=%d%%", s.Name, r.Name, r.Weight)
			}
		}
	case "health":
		fmt.Fprint(w, "health:")
		for _, s := range st.Slots {
			for _, r := range s.Revisions {
				fmt.Fprintf(w, " %s %d/%d healthy", r.Name, healthyOf(r), len(r.Instances))
			}
		}
	case "placement":
		fmt.Fprint(w, "placement:")
		for _, s := range st.Slots {
			if s.Scale != nil {
				fmt.Fprintf(w, " %s scale %d", s.Name, s.Scale.Instances)
				if s.Scale.MaxPerHost > 0 {
					fmt.Fprintf(w, " (at most %d per host)", s.Scale.MaxPerHost)
				}
				fmt.Fprint(w, ";")
			}
			for _, r := range s.Revisions {
				for i, p := range r.Hosts {
					sep := ","
					if i == 0 {
						sep = " " + r.Name + " on"
					}
					fmt.Fprintf(w, "%s %s %d (%s)", sep, p.Host, p.Instances, p.State)
				}
			}
		}
	case "conflicts":
		fmt.Fprintf(w, "conflicts: %d", len(st.Conflicts))
		for _, c := range st.Conflicts {
			fmt.Fprintf(w, "\n  %s: %s\n    fix: %s", c.Code, c.Message, c.Fix)
		}
	case "freeze":
		if st.Frozen != nil {
			fmt.Fprintf(w, "frozen by %s: %s", st.Frozen.By, st.Frozen.Reason)
		} else {
			fmt.Fprint(w, "unfrozen")
		}
	default:
		fmt.Fprint(w, ev.Type)
	}
	fmt.Fprintln(w)
}
