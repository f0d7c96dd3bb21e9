package apikey

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestFromRequestOverHTTP sends real requests over loopback and checks what
// the server side parses out of them.
func TestFromRequestOverHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := FromRequest(r)
		switch {
		case errors.Is(err, ErrMissing):
			fmt.Fprint(w, "missing")
		case errors.Is(err, ErrMalformed):
			fmt.Fprint(w, "malformed")
		case err != nil:
			fmt.Fprint(w, "other")
		default:
			fmt.Fprint(w, "key="+key)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		headers []string
		want    string
	}{
		{nil, "missing"},
		{[]string{"Bearer k1"}, "key=k1"},
		{[]string{"Basic a2V5"}, "malformed"},
		{[]string{"Bearer"}, "malformed"},
		{[]string{"Bearer k1", "Bearer k2"}, "malformed"},
	} {
		req, err := http.NewRequest("GET", srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range tc.headers {
			req.Header.Add("Authorization", h)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body [64]byte
		n, _ := resp.Body.Read(body[:])
		resp.Body.Close()
		if got := string(body[:n]); got != tc.want {
			t.Errorf("headers %q: server saw %q, want %q", tc.headers, got, tc.want)
		}
	}
}
