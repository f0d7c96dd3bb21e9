package scope

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]Scope{"": Read, "read": Read, "write": Write, "admin": Admin} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"Admin", "none", "rw", " read"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v; want an error", in, got)
		}
	}
}

func TestAllows(t *testing.T) {
	cases := []struct {
		key, need Scope
		want      bool
	}{
		{Read, Read, true}, {Read, Write, false}, {Read, Admin, false},
		{Write, Read, true}, {Write, Write, true}, {Write, Admin, false},
		{Admin, Read, true}, {Admin, Write, true}, {Admin, Admin, true},
		{None, Read, false}, {Admin, None, false}, {Scope(9), Read, false},
	}
	for _, c := range cases {
		if got := c.key.Allows(c.need); got != c.want {
			t.Errorf("%v.Allows(%v) = %v, want %v", c.key, c.need, got, c.want)
		}
	}
	if Write.String() != "write" || Scope(9).String() != "scope(9)" {
		t.Errorf("String: %q %q", Write.String(), Scope(9).String())
	}
}
