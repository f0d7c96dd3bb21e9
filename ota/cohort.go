package ota

import "hash/fnv"

// Cohorts is how many cohorts a fleet is split into for staged rollouts:
// a rollout enables them in order, 00 first, so each is about 1 % of a
// large fleet.
const Cohorts = 100

// CohortPlaceholder in an agent's manifest URL becomes its cohort, two
// digits: "https://fleet.example.com/ota/stable/cohort-{cohort}.json".
const CohortPlaceholder = "{cohort}"

// CohortOf is the cohort of a gateway id: the 32-bit FNV-1a hash of the
// id, modulo Cohorts. It never changes for a gateway, so the same
// gateways go first in every rollout (`osgate fleet` computes it alike).
func CohortOf(gateway string) int {
	h := fnv.New32a()
	h.Write([]byte(gateway))
	return int(h.Sum32() % Cohorts)
}

// CohortFile is the name of cohort c's manifest in a channel's directory.
func CohortFile(c int) string {
	return "cohort-" + string(rune('0'+c/10)) + string(rune('0'+c%10)) + ".json"
}
