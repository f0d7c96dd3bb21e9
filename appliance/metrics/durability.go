package metrics

// Durability of exported messages: the export spool and the managed
// broker's saved state (appliance/export, appliance/broker). Kept in its
// own file: those packages own these.

var (
	// SpoolDamagedBytes counts bytes of the export spool skipped because
	// they did not form valid records (damage, or a write cut short).
	SpoolDamagedBytes = counter0("osgate_export_spool_damaged_bytes_total",
		"Bytes of the export spool skipped as damaged or cut short when it was read.")
	// SpoolLostMessages counts accepted messages the spool could not read
	// back because their records were damaged.
	SpoolLostMessages = counter0("osgate_export_spool_lost_messages_total",
		"Accepted messages lost to damaged export spool records.")
	// ExportUnconfirmed is how many messages the broker acknowledged that
	// are not yet in a save of its state (sent again if it crashes).
	ExportUnconfirmed = gauge("osgate_export_unconfirmed",
		"Messages acknowledged by the managed broker and not yet in its saved state.")
	// ExportReplayKept is how many messages the spool keeps to replay
	// should the broker's saved state be lost: those the broker still held
	// for the cloud at its last save.
	ExportReplayKept = gauge("osgate_export_replay_kept",
		"Messages kept in the export spool in case the managed broker's saved state is lost (its cloud backlog).")
	// ExportReplayDropped counts messages dropped from the replay tail to
	// stay within its limit: a lost broker state could no longer be
	// replayed in full.
	ExportReplayDropped = counter0("osgate_export_replay_dropped_total",
		"Messages dropped from the export replay tail to stay within its limit.")
	// ExportResent counts messages sent again because the broker restarted
	// before saving them, or lost its saved state.
	ExportResent = counter0("osgate_export_resent_total",
		"Messages sent again after a managed broker restart or a lost broker state.")

	// BrokerUp is 1 while the managed Mosquitto runs.
	BrokerUp = gauge("osgate_broker_up", "1 while the managed Mosquitto runs.")
	// BrokerDBDamaged counts damaged mosquitto.db files moved aside.
	BrokerDBDamaged = counter0("osgate_broker_db_damaged_total",
		"Damaged mosquitto.db files moved aside so the managed broker could start.")
	// BrokerSaves counts confirmed saves of the managed broker's state by
	// outcome: "ok", or "error" (no save came, or it was unreadable).
	BrokerSaves = counter("osgate_broker_saves_total",
		"Saves of the managed broker's state the export waited for, by outcome.", "outcome")
	// BrokerBacklog is how many export messages the broker's last
	// confirmed save held for the cloud bridge.
	BrokerBacklog = gauge("osgate_broker_bridge_backlog",
		"Export messages the managed broker held for the cloud bridge at its last confirmed save.")
)
