package ota

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCohortOf: cohorts are stable, in range, and spread a fleet evenly
// enough that a 5 % canary is about 5 % of it.
func TestCohortOf(t *testing.T) {
	// Pinned: a gateway's cohort must not move between versions (FNV-1a
	// of "gw-0001", modulo 100).
	if c := CohortOf("gw-0001"); c != 61 {
		t.Fatalf("CohortOf(gw-0001) = %d, want 61", c)
	}
	counts := make([]int, Cohorts)
	const n = 10000
	for i := range n {
		c := CohortOf(fmt.Sprintf("gw-%04d", i))
		if c < 0 || c >= Cohorts {
			t.Fatalf("cohort %d out of range", c)
		}
		counts[c]++
	}
	first5 := 0
	for _, c := range counts[:5] {
		first5 += c
	}
	if first5 < n*4/100 || first5 > n*6/100 {
		t.Errorf("cohorts 00-04 hold %d of %d gateways, want about 5 %%", first5, n)
	}
	if CohortFile(7) != "cohort-07.json" || CohortFile(42) != "cohort-42.json" {
		t.Errorf("CohortFile: %s %s", CohortFile(7), CohortFile(42))
	}
}

// TestAgentPullsItsCohort: with "{cohort}" in its URL the agent pulls its
// cohort's manifest (a copy of the release's signed manifest in the
// channel's directory) and the parts next to it, and reports its cohort;
// the channel's own manifest.json is not asked for.
func TestAgentPullsItsCohort(t *testing.T) {
	pub, priv := testKey(t)
	dir, srv := serve(t)
	publish(t, priv, dir, "stable", "v2.0.0", 2)
	const gw = "gw-cohort-test"
	c := CohortOf(gw)
	ch := filepath.Join(dir, "stable")
	for _, ext := range []string{".sig", ""} {
		if err := os.WriteFile(filepath.Join(ch, CohortFile(c)+ext), mustRead(t, ch, "manifest.json"+ext), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := newRig(t, strings.Replace(srv.url("stable"), "manifest.json", "cohort-{cohort}.json", 1), pub)
	r.gateway = gw
	a := r.run()
	s := a.Status()
	if s.Last != "confirmed v2.0.0" || s.Cohort == nil || *s.Cohort != c {
		t.Fatalf("status %+v (cohort %v), want confirmed v2.0.0 in cohort %d", s, s.Cohort, c)
	}
	if got := srv.requests(t, "/stable/"+CohortFile(c)); len(got) == 0 {
		t.Error("the cohort's manifest was not fetched")
	}
	if got := srv.requests(t, "/stable/manifest.json"); len(got) > 0 {
		t.Errorf("the channel's manifest was fetched: %v", got)
	}
	if got := srv.requests(t, "/stable/root-"); len(got) == 0 {
		t.Error("the root part was not fetched next to the cohort's manifest")
	}
	// Without the gateway id, a cohort URL cannot be resolved.
	_, err := New(Options{URL: r.url, PublicKey: pub, Running: "v1", StateDir: t.TempDir(), Updater: r.dev, Health: a.health})
	if err == nil || !strings.Contains(err.Error(), "{cohort}") {
		t.Errorf("a cohort URL without a gateway id: %v", err)
	}
}
