package baton

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a byte count as people write one: "5GiB", "500MB",
// "750M", "1024" (plain bytes). K, M, G, T and their KiB… forms are powers
// of 1024; KB, MB, GB, TB powers of 1000.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, Errorf(EINVALID, "size %q: want a number of bytes, or one with a unit such as 500MiB or 5GiB", s)
	}
	mult := map[string]float64{"": 1, "B": 1,
		"K": 1 << 10, "KIB": 1 << 10, "KB": 1e3,
		"M": 1 << 20, "MIB": 1 << 20, "MB": 1e6,
		"G": 1 << 30, "GIB": 1 << 30, "GB": 1e9,
		"T": 1 << 40, "TIB": 1 << 40, "TB": 1e12}
	m, ok := mult[unit]
	if !ok {
		return 0, Errorf(EINVALID, "size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)", s, t[i:])
	}
	return int64(v * m), nil
}

// FormatSize renders n bytes for people: "191.2 MiB".
func FormatSize(n int64) string {
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
