package ui

import (
	"encoding/json"

	"github.com/osgate/osgate/internal/apikey"
)

// The results of the JSON-RPC methods the pages call, as far as the pages
// read them (appliance/rpc/README.md describes them all).

func keyDigest(key string) [32]byte { return apikey.Digest(key) }

type gatewayStatus struct {
	ID       string `json:"id"`
	Version  string `json:"version"`
	Started  string `json:"started"`
	ClockSet bool   `json:"clock_set"`
	Clock    struct {
		State     string   `json:"state"`
		Source    string   `json:"source"`
		SetSystem bool     `json:"set_system"`
		Now       string   `json:"now"`
		LastSync  string   `json:"last_sync"`
		Offset    string   `json:"offset"`
		HoldUntil string   `json:"hold_until"`
		Sources   []string `json:"sources"`
		Errors    []string `json:"errors"`
		Held      int      `json:"held"`
	} `json:"clock"`
	Health struct {
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
		Live    bool     `json:"live"`
		Uptime  string   `json:"uptime"`
		Export  struct {
			Connected bool   `json:"connected"`
			Since     string `json:"since"`
			Queued    int    `json:"queued"`
			Limit     int    `json:"limit"`
			Oldest    string `json:"oldest"`
		} `json:"export"`
		Disk *struct {
			Dir       string `json:"dir"`
			FreeBytes uint64 `json:"free_bytes"`
			WarnBytes uint64 `json:"warn_bytes"`
			Full      bool   `json:"full"`
		} `json:"disk"`
		Broker     string `json:"broker"`
		Connectors []struct {
			Name      string `json:"name"`
			OK        bool   `json:"ok"`
			LastOK    string `json:"last_ok"`
			LastError string `json:"last_error"`
		} `json:"connectors"`
		Devices map[string]int `json:"devices"`
	} `json:"health"`
	Bridge struct {
		Configured bool   `json:"configured"`
		Connected  *bool  `json:"connected"`
		Since      string `json:"since"`
	} `json:"bridge"`
	System map[string]any `json:"system"`
}

type configStatus struct {
	Source      string `json:"source"`
	Version     string `json:"version"`
	URL         string `json:"url"`
	LastFetch   string `json:"last_fetch"`
	LastOutcome string `json:"last_outcome"`
	LastError   string `json:"last_error"`
	LastErrorAt string `json:"last_error_at"`
	BadVersions []struct {
		Version string `json:"version"`
		Reason  string `json:"reason"`
	} `json:"bad_versions"`
}

type otaStatus struct {
	State    string `json:"state"`
	Text     string `json:"status"`
	Running  string `json:"running"`
	Target   string `json:"target"`
	Last     string `json:"last"`
	Checked  string `json:"checked"`
	Progress int    `json:"progress"`
}

type deviceInfo struct {
	Name      string   `json:"name"`
	Connector string   `json:"connector"`
	Type      string   `json:"type"`
	Interval  string   `json:"interval"`
	Channels  []string `json:"channels"`
	State     string   `json:"state"`
	Since     string   `json:"since"`
	Reason    string   `json:"reason"`
	LastPoll  string   `json:"last_poll"`
	LastOK    string   `json:"last_ok"`
	LastError string   `json:"last_error"`
	Failures  int      `json:"failures"`
}

type connectorInfo struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Kind     string   `json:"kind"`
	Devices  int      `json:"devices"`
	Started  string   `json:"started"`
	Commands []string `json:"commands"`
}

type deviceValues struct {
	Device    string         `json:"device"`
	Connector string         `json:"connector"`
	Channels  []channelValue `json:"channels"`
}

type channelValue struct {
	Channel  string       `json:"channel"`
	Exported string       `json:"exported"`
	Unit     string       `json:"unit"`
	Writable bool         `json:"writable"`
	Value    any          `json:"value"`
	Quality  string       `json:"quality"`
	Time     string       `json:"time"`
	Seen     string       `json:"seen"`
	Dropped  string       `json:"dropped"`
	Error    string       `json:"error"`
	ErrorAt  string       `json:"error_at"`
	Errors   uint64       `json:"errors"`
	Trend    [][2]float64 `json:"trend"`
}

type logsResult struct {
	Lines   []string `json:"lines"`
	Evicted uint64   `json:"evicted"`
}

type validateResult struct {
	Valid  bool `json:"valid"`
	Errors []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"errors"`
	Connectors int `json:"connectors"`
	Devices    int `json:"devices"`
	Channels   int `json:"channels"`
}

// scanResult is mbus.scan's answer.
type scanResult struct {
	Meters []struct {
		Address      string `json:"address"`
		Primary      *int   `json:"primary"`
		Secondary    string `json:"secondary"`
		Manufacturer string `json:"manufacturer"`
		Version      int    `json:"version"`
		Medium       string `json:"medium"`
	} `json:"meters"`
	Collisions   []string          `json:"collisions"`
	Transactions int               `json:"transactions"`
	Devices      []json.RawMessage `json:"devices"`
}

// joinResult is zwave.include's and zwave.exclude's answer.
type joinResult struct {
	NodeID         int             `json:"node_id"`
	Status         string          `json:"status"`
	CommandClasses []string        `json:"command_classes"`
	Security       []string        `json:"security"`
	DSK            string          `json:"dsk"`
	Interview      json.RawMessage `json:"interview"`
}
