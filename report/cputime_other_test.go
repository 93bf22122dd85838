//go:build !unix

package report

import "time"

// cpuTime is not measured here: rows/cpu-s reads +Inf.
func cpuTime() time.Duration { return 0 }
