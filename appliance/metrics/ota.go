package metrics

// Update agent (ota). Kept in its own file: the ota package owns these.

var (
	// OTAChecks counts checks of the release channel; outcome is "current"
	// (nothing to do), "update" (a release to install), "refused" (bad
	// signature, wrong channel, too old, failed before) or "error".
	OTAChecks = counter("osgate_ota_checks_total", "Release channel checks by outcome: current, update, refused, error.", "outcome")
	// OTAUpdates counts finished updates; outcome is "confirmed",
	// "rolled_back" or "failed" (given up before a try).
	OTAUpdates = counter("osgate_ota_updates_total", "Finished updates by outcome: confirmed, rolled_back, failed.", "outcome")
	// OTADownloadBytes counts bytes of release parts downloaded.
	OTADownloadBytes = counter0("osgate_ota_download_bytes_total", "Bytes of release parts downloaded.")
)
