package baton

import (
	"fmt"
	"time"
)

// Revision is an immutable, numbered snapshot of an app: artifact plus
// manifest. Its name is APP--NNNNNN.
type Revision struct {
	Name           string    `json:"name"`
	App            string    `json:"app"`
	Slot           string    `json:"slot"`
	Number         int       `json:"number"`
	Deployment     string    `json:"deployment"`
	ArtifactDigest string    `json:"artifact_digest"`
	CreatedAt      time.Time `json:"created_at"`
	// Active revisions run instances; Weight is their share of the slot's
	// traffic in percent.
	Active bool `json:"active"`
	Weight int  `json:"traffic"`
	// Env holds the non-sticky settings the revision was created with; they
	// travel with it on swap. Never serialized: it may hold secrets.
	Env map[string]string `json:"-"`
	// Source is the revision whose code this one runs again, when a
	// settings change or a rollback with the current settings made it
	// ("" for a deploy's). An image revision's manifest came with the
	// deploy at the start of that chain, and is found there again when
	// its folder must be restored.
	Source string `json:"source,omitempty"`
}

// RevisionWeight is one revision's place in a slot's routing.
type RevisionWeight struct {
	Revision string `json:"revision"`
	Weight   int    `json:"weight"`
}

// RevisionName returns the name of revision n of app.
func RevisionName(app string, n int) string {
	return fmt.Sprintf("%s--%06d", app, n)
}
