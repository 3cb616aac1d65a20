package supervisor

import (
	"fmt"
	"syscall"
)

// commandNice is how much nicer than baton a build or release command
// runs (as nice(1) does by default). A build compiles on every core it
// can get; at equal priority it takes CPU time from the proxy and from the
// instances serving, which then answer late for as long as it runs. Ten
// steps lower, the scheduler gives it about a tenth of the CPU the others
// want and all of what they leave idle: the build takes longer only on a
// busy machine, and requests stay fast meanwhile. Instances are never
// niced: they serve.
const commandNice = 10

// I/O priority of commands: ioprio_set(2), best-effort class, lowest level.
const (
	ioprioWhoProcess = 1
	ioprioClassBE    = 2
	ioprioClassShift = 13
	ioprioLowestBE   = ioprioClassBE<<ioprioClassShift | 7
)

// lowerPriority makes process pid yield the CPU (commandNice) and the disk
// to everything else baton runs. startGated calls it while the shell still
// waits at its gate: every process the command then starts inherits both.
func lowerPriority(pid int) error {
	// The raw getpriority(2) answers 20 - nice.
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		return fmt.Errorf("read baton's nice value: %w", err)
	}
	nice := min(20-raw+commandNice, 19)
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice); err != nil {
		return fmt.Errorf("set nice value %d: %w", nice, err)
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(pid), ioprioLowestBE); errno != 0 {
		return fmt.Errorf("set I/O priority: %w", errno)
	}
	return nil
}
