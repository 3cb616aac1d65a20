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
}

// RevisionName returns the name of revision n of app.
func RevisionName(app string, n int) string {
	return fmt.Sprintf("%s--%06d", app, n)
}
