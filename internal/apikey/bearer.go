package apikey

import (
	"errors"
	"net/http"
	"strings"
)

// Errors of FromRequest. Neither carries any part of the presented key.
var (
	// ErrMissing: the request has no Authorization header.
	ErrMissing = errors.New("no API key: send the header \"Authorization: Bearer KEY\"")
	// ErrMalformed: the Authorization header is not "Bearer KEY".
	ErrMalformed = errors.New("malformed Authorization header: expected \"Bearer KEY\"")
)

// maxKey bounds a presented key; real keys are far shorter.
const maxKey = 1024

// FromRequest returns the key of an "Authorization: Bearer KEY" header.
// The scheme is case-insensitive; the key is one token of visible ASCII.
func FromRequest(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", ErrMissing
	case 1:
		return parseBearer(vals[0])
	}
	return "", ErrMalformed
}

// parseBearer parses one Authorization header value.
func parseBearer(h string) (string, error) {
	scheme, rest, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMalformed
	}
	key := strings.TrimLeft(rest, " ")
	if key == "" || len(key) > maxKey {
		return "", ErrMalformed
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			return "", ErrMalformed
		}
	}
	return key, nil
}
