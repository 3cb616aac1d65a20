package baton

import (
	"sort"
	"strings"
)

// MaskMinLen is the shortest text Masker hides: a secret (or a line of a
// multi-line one) shorter than this would turn ordinary words and digits
// of every log into asterisks.
const MaskMinLen = 4

// Masker hides the values of secret settings in log text. A nil *Masker
// hides nothing.
type Masker struct {
	r *strings.Replacer
}

// NewMasker returns a Masker for the given secret values. A value that
// spans lines is hidden whole, and each of its lines alone too: programs
// print a multi-line secret (a PEM key) in one write that the log splits
// into lines, or line by line.
func NewMasker(secrets []string) *Masker {
	seen := map[string]bool{}
	var needles []string
	add := func(s string) {
		if len(s) >= MaskMinLen && !seen[s] {
			seen[s] = true
			needles = append(needles, s)
		}
	}
	for _, v := range secrets {
		add(v)
		add(strings.TrimSpace(v))
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.Split(v, "\n") {
				add(strings.TrimSpace(line))
			}
		}
	}
	if len(needles) == 0 {
		return nil
	}
	// The replacer tries needles in order at each position: longest first,
	// so a whole value wins over its own lines.
	sort.Slice(needles, func(i, j int) bool {
		if len(needles[i]) != len(needles[j]) {
			return len(needles[i]) > len(needles[j])
		}
		return needles[i] < needles[j]
	})
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, SecretMask)
	}
	return &Masker{r: strings.NewReplacer(pairs...)}
}

// SecretMask stands for a secret value wherever baton shows or logs one.
const SecretMask = "********"

// Mask returns s with every secret value hidden.
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	return m.r.Replace(s)
}

// SecretValues lists the values of the secret settings among ss.
func SecretValues(ss []Setting) []string {
	var out []string
	for _, s := range ss {
		if s.Secret {
			out = append(out, s.Value)
		}
	}
	return out
}
