package apikey

import (
	"errors"
	"strings"
	"testing"

	"github.com/osgate/osgate/internal/scope"
	"github.com/osgate/osgate/internal/strict"
)

func TestHashMatchesSha256sum(t *testing.T) {
	// printf %s secret | sha256sum
	const want = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
	if got := Hash("secret"); got != want {
		t.Fatalf("Hash(secret) = %s, want %s", got, want)
	}
}

func TestCheck(t *testing.T) {
	s, err := New([]Key{
		{Name: "ops", SHA256: Hash("ops-key"), Scope: "admin"},
		{Name: "cloud", SHA256: strings.ToUpper(Hash("cloud-key")), Scope: "write"},
		{Name: "ci", SHA256: " " + Hash("ci-key") + " "},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	for _, tc := range []struct {
		key, name string
		scope     scope.Scope
		ok        bool
	}{
		{"ops-key", "ops", scope.Admin, true},
		{"cloud-key", "cloud", scope.Write, true},
		{"ci-key", "ci", scope.Read, true}, // no scope given: the default, read
		{"ops-key ", "", scope.None, false},
		{"OPS-KEY", "", scope.None, false},
		{"", "", scope.None, false},
		{Hash("ops-key"), "", scope.None, false}, // the digest itself is not a key
	} {
		name, sc, ok := s.Check(tc.key)
		if name != tc.name || sc != tc.scope || ok != tc.ok {
			t.Errorf("Check(%q) = %q, %v, %v; want %q, %v, %v", tc.key, name, sc, ok, tc.name, tc.scope, tc.ok)
		}
		if tc.key == "" {
			continue
		}
		name, sc, ok = s.CheckDigest(Digest(tc.key))
		if name != tc.name || sc != tc.scope || ok != tc.ok {
			t.Errorf("CheckDigest(Digest(%q)) = %q, %v, %v; want %q, %v, %v", tc.key, name, sc, ok, tc.name, tc.scope, tc.ok)
		}
	}
}

func TestEmptySetAcceptsNothing(t *testing.T) {
	for _, s := range []*Set{nil, {}, mustNew(t, nil)} {
		if name, _, ok := s.Check("anything"); ok || name != "" {
			t.Errorf("empty set accepted a key as %q", name)
		}
		if s.Len() != 0 {
			t.Errorf("Len = %d", s.Len())
		}
	}
}

func mustNew(t *testing.T, keys []Key) *Set {
	t.Helper()
	s, err := New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewReportsEveryProblemWithPath(t *testing.T) {
	_, err := New([]Key{
		{Name: "a", SHA256: Hash("a")},
		{Name: "", SHA256: "abc"},
		{Name: "a", SHA256: Hash("a")},
		{Name: "e", SHA256: emptyDigest},
		{Name: "x", SHA256: strings.Repeat("g", 64)},
		{Name: "y", SHA256: Hash("y") + "00"},
		{Name: "z", SHA256: Hash("z"), Scope: "root"},
	})
	var es strict.Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v (%T), want strict.Errors", err, err)
	}
	want := map[string]string{
		"[1].name":   "must not be empty",
		"[1].sha256": "must be 64 hex digits",
		"[2].name":   "already the name of key 0",
		"[2].sha256": "same key as key 0",
		"[3].sha256": "empty key",
		"[4].sha256": "must be 64 hex digits",
		"[5].sha256": "must be 64 hex digits",
		"[6].scope":  `"root" is not a scope`,
	}
	got := map[string]string{}
	for _, e := range es {
		got[e.Path] = e.Msg
	}
	for path, frag := range want {
		if !strings.Contains(got[path], frag) {
			t.Errorf("%s: got %q, want it to contain %q", path, got[path], frag)
		}
	}
	if len(es) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(es), len(want), err)
	}
}

func TestParseBearer(t *testing.T) {
	for _, tc := range []struct {
		h, key string
		err    error
	}{
		{"Bearer abc", "abc", nil},
		{"bearer abc", "abc", nil},
		{"BEARER  a.b-c_d~e+f/g==", "a.b-c_d~e+f/g==", nil},
		{"Bearer", "", ErrMalformed},
		{"Bearer ", "", ErrMalformed},
		{"Basic dXNlcjpwYXNz", "", ErrMalformed},
		{"Bearer a b", "", ErrMalformed},
		{"Bearer a\tb", "", ErrMalformed},
		{"Bearer ключ", "", ErrMalformed},
		{"abc", "", ErrMalformed},
		{"Bearer " + strings.Repeat("k", maxKey+1), "", ErrMalformed},
	} {
		key, err := parseBearer(tc.h)
		if key != tc.key || !errors.Is(err, tc.err) {
			t.Errorf("parseBearer(%q) = %q, %v; want %q, %v", tc.h, key, err, tc.key, tc.err)
		}
	}
}

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x", "Bearer", "Basic a", "", "Bearer \x00", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		key, err := parseBearer(h)
		if err != nil {
			if key != "" {
				t.Fatalf("error %v with key %q", err, key)
			}
			if err != ErrMalformed {
				t.Fatalf("error %v, want only ErrMalformed (which carries no part of the header)", err)
			}
			return
		}
		if key == "" || strings.ContainsAny(key, " \t\r\n") || !strings.HasSuffix(h, key) {
			t.Fatalf("parseBearer(%q) = %q", h, key)
		}
	})
}
