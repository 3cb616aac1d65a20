// Package artifact stores uploaded artifacts by content, unpacks them safely
// into revision folders, and packs folders into zips for upload.
package artifact

import (
	"fmt"

	"github.com/batonhq/baton"
)

// Artifact kinds, as returned by DetectType and accepted by Extract.
const (
	KindZip   = "zip"
	KindTarGz = "tar.gz"
)

// Limits bound what Extract writes. A zero field means its DefaultLimits
// value, so a forgotten limit never means "none".
type Limits struct {
	// MaxBytes is the total of uncompressed file bytes.
	MaxBytes int64
	// MaxFiles is the number of entries: files, folders and links.
	MaxFiles int
}

// DefaultLimits returns 1 GiB and 100,000 entries.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 1 << 30, MaxFiles: 100_000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	return l
}

// formatSize renders n bytes the way people write limits: "1.0 GiB".
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// unprocessable returns an EUNPROCESSABLE error.
func unprocessable(format string, args ...any) *baton.Error {
	return baton.Errorf(baton.EUNPROCESSABLE, format, args...)
}
