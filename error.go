package baton

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to exactly one HTTP status in the http package and
// back again in its client, so a CLI user sees the same code the server chose.
const (
	EINVALID       = "invalid"       // bad input: 400
	ENOTFOUND      = "not_found"     // 404
	ECONFLICT      = "conflict"      // the app is busy or the object is in the wrong state: 409
	EFROZEN        = "frozen"        // deployments are frozen for the app: 423
	EQUEUEFULL     = "queue_full"    // too many deployments waiting: 429
	ETOOLARGE      = "too_large"     // body over a limit: 413
	EUNPROCESSABLE = "unprocessable" // well-formed but unusable input (bad archive): 422
	EUNAUTHORIZED  = "unauthorized"  // 401
	EFORBIDDEN     = "forbidden"     // 403
	EUNAVAILABLE   = "unavailable"   // shutting down or not ready: 503
	EINTERNAL      = "internal"      // anything else: 500, text never shown
)

// Error is baton's one error type: a code for programs, a sentence for
// people, and optional details (the holder of a lock, a queue length) that
// the HTTP layer turns into RFC 9457 extension members.
type Error struct {
	Code    string
	Message string
	// Conflict describes who holds the app when Code is ECONFLICT or EQUEUEFULL.
	Conflict *ConflictDetail
	// RetryAfterSeconds is sent as Retry-After when positive.
	RetryAfterSeconds int
}

func (e *Error) Error() string {
	return fmt.Sprintf("baton %s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	}
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of the first *Error in err's
// chain; for other errors it returns a generic sentence, never their text.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error; the server log has the details."
}

// ConflictDetail names what holds an app when a request is refused, so the
// person who was refused knows whom to wait for and for how long.
type ConflictDetail struct {
	App         string      `json:"app"`
	Holder      *Deployment `json:"holder,omitempty"`
	QueueLength int         `json:"queue_length"`
	// RunningForSeconds is how long the holder has run.
	RunningForSeconds int `json:"running_for_seconds,omitempty"`
}
