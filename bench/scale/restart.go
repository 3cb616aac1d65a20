package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"
)

// restartRow is one timed restart of baton serve.
type restartRow struct {
	stop time.Duration // SIGTERM → exited
	// From the fork of the new process:
	ready  time.Duration // /readyz answers 200
	routes time.Duration // the proxy routes the last app (503: known, nothing deployed)
	apps   time.Duration // every deployed app answers 200 through the proxy
	// down is SIGTERM → every deployed app answers 200 again: baton stops
	// the instances it runs when it stops, so the apps are unavailable
	// for this long.
	down time.Duration
}

// restarts stops baton with SIGTERM and starts it again on the same data
// and ports, o.restarts times, and times how long until it is ready and
// until its proxy routes again.
func (s *scale) restarts(ctx context.Context) error {
	probe := appName(s.o.apps - 1) // never deployed: its route answers 503 once the table holds every app
	step("restarting baton serve %d times (SIGTERM, start again on the same data and ports); timing /readyz, the route of %s, and %d deployed apps through the proxy",
		s.o.restarts, probe, s.o.deployed)
	proxy := "http://" + s.b.ProxyAddr + "/"
	for i := range s.o.restarts {
		var row restartRow
		var err error
		sigterm := time.Now()
		if row.stop, err = s.b.Stop(60 * time.Second); err != nil {
			return err
		}
		if err := s.b.Launch(); err != nil {
			return err
		}
		started := s.b.Started
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		wait := func(into *time.Duration, url, host string, accept func(int, []byte) bool) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.b.WaitHTTP(ctx, 2*time.Minute, url, host, accept)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("restart %d: waiting for %s (Host %s): %w", i+1, url, host, err))
					return
				}
				*into = max(*into, time.Since(started))
			}()
		}
		wait(&row.ready, "http://"+s.b.APIAddr+"/readyz", "", nil)
		wait(&row.routes, proxy, probe+".localhost", func(status int, body []byte) bool {
			return status == 503 && bytes.Contains(body, []byte(probe))
		})
		for j := range s.o.deployed {
			want := []byte(`"app":"` + appName(j) + `"`)
			wait(&row.apps, proxy, appName(j)+".localhost", func(status int, body []byte) bool {
				return status == 200 && bytes.Contains(body, want)
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			return fmt.Errorf("%v\n%s", errs[0], s.b.LogTail(20))
		}
		row.down = started.Add(row.apps).Sub(sigterm)
		s.rep.restarts = append(s.rep.restarts, row)
		step("restart %d: exited %s after SIGTERM; new process ready after %s, routes %s after %s, all %d deployed apps answer after %s (pid %d)",
			i+1, ms(row.stop), ms(row.ready), probe, ms(row.routes), s.o.deployed, ms(row.apps), s.b.PID())
	}
	return nil
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
