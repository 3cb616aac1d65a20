// Package artifact stores uploaded artifacts by content, unpacks them safely
// into revision folders, and packs folders into zips for upload.
package artifact

import (
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

// unprocessable returns an EUNPROCESSABLE error.
func unprocessable(format string, args ...any) *baton.Error {
	return baton.Errorf(baton.EUNPROCESSABLE, format, args...)
}
