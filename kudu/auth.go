package kudu

import (
	"net/http"
	"strings"
)

// credentialsOf reads the request's Basic or Bearer credentials, the two
// ways Kudu clients authenticate (publishing credentials, or an Entra
// token). It reports false when there are none or they are malformed.
func credentialsOf(r *http.Request) (Credentials, bool) {
	if user, pass, ok := r.BasicAuth(); ok {
		return Credentials{Scheme: "Basic", User: user, Secret: pass}, true
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Credentials{}, false
	}
	return Credentials{Scheme: "Bearer", Secret: token}, true
}
