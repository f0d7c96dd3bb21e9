// Preload (node -r) for the zwave-js@15.29.0 mock server used by osgate's
// drivers/zwave tests. Adapted from the team's recipe in shared/peers/zwave.
// Pinned: patch 2 replaces an internal method of MockController.
const path = require("path");
const base = [path.join(__dirname, "node_modules/zwave-js"), __dirname];
const req = (m) => require(require.resolve(m, { paths: base }));

// 1. The mock server advertises itself over mDNS on every interface: a test
//    must not multicast, so the responder is a no-op.
const ciao = req("@homebridge/ciao");
const svc = { advertise: async () => {}, end: async () => {}, destroy: async () => {} };
ciao.getResponder = () => ({ createService: () => svc, shutdown: async () => {} });

// 2. The stock mock parses every TCP read as exactly one frame: an ACK
//    coalesced with the next request, or a frame split over two reads (both
//    normal on a serial line, and what our fault relay does on purpose)
//    crash it. Re-frame the host's byte stream like a real stick: single
//    ACK/NAK/CAN bytes, SOF frames by LEN, garbage skipped, a bad checksum
//    answered with NAK, a partial frame forgotten after 1.5 s.
const { MockController } = req("@zwave-js/testing");
const orig = MockController.prototype.serialOnData;
MockController.prototype.serialOnData = function (data) {
	if (typeof data === "number") return orig.call(this, data);
	const now = Date.now();
	if (this.__rxBuf?.length && now - this.__rxAt > 1500) this.__rxBuf = undefined;
	this.__rxAt = now;
	let buf = this.__rxBuf ? Buffer.concat([this.__rxBuf, data]) : Buffer.from(data);
	const pending = [];
	while (buf.length) {
		const b = buf[0];
		if (b === 0x06 || b === 0x15) {
			pending.push(orig.call(this, b));
			buf = buf.subarray(1);
			continue;
		}
		if (b === 0x18) {
			// 3. A CAN from the host makes the stock mock throw; a real
			//    stick drops its frame and retransmits. Log and ignore.
			console.error("[preload] CAN from host ignored");
			buf = buf.subarray(1);
			continue;
		}
		if (b !== 0x01) {
			console.error(`[preload] dropping non-SOF byte 0x${b.toString(16)}`);
			buf = buf.subarray(1);
			continue;
		}
		if (buf.length < 2 || buf.length < buf[1] + 2) break;
		const frame = Buffer.from(buf.subarray(0, buf[1] + 2));
		buf = buf.subarray(buf[1] + 2);
		let cs = 0xff;
		for (let i = 1; i < frame.length - 1; i++) cs ^= frame[i];
		if (cs !== frame[frame.length - 1]) {
			console.error(`[preload] bad checksum, NAK: ${frame.toString("hex")}`);
			this.sendHeaderToHost(0x15);
			continue;
		}
		pending.push(orig.call(this, frame));
	}
	this.__rxBuf = buf.length ? Buffer.from(buf) : undefined;
	return Promise.all(pending).catch((e) => console.error("[preload] host message:", e?.message ?? e));
};

// 4. Any unhandled rejection (a host that ACKs late, a SendData while the
//    mock is busy) kills the stock process: log it and keep serving, so a
//    test fails on what the driver does, not on the peer dying.
process.on("unhandledRejection", (e) => console.error("[preload] unhandled rejection:", e?.message ?? e));
