// Mock Z-Wave network for osgate's drivers/zwave tests, loaded by the
// zwave-js@15.29.0 mock server:
//   node -r ./preload.cjs node_modules/zwave-js/bin/mock-server.cjs -i 127.0.0.1 -p PORT -c mock-config.cjs
// Adapted from the team's recipe in shared/peers/zwave (not read at test time).
// The loader calls require(file).default({require}); the require it passes
// resolves zwave-js's own packages.
//
// Nodes: 2 air temperature sensor whose value changes every second,
// 3 electricity meter (kWh, W), 4 relay (Binary Switch), 5 dimmer
// (Multilevel Switch), 7 a relay that never answers (a dead node), 8 a
// double relay with two Multi Channel endpoints (the mock keeps one switch
// state per node, not per endpoint), 9 a battery multisensor that only
// pushes reports.
// Environment:
//   ZW_UNSOLICITED_MS  node 2 pushes an unsolicited temperature report this
//                      often, node 9 battery, motion, notification and meter
//   ZW_PENDING_NODE    id of a relay that joins at the next inclusion
const t0 = Date.now();
const secs = () => Math.floor((Date.now() - t0) / 1000);
const celsius = () => 20 + (secs() % 100) / 10;
const unsolicitedMs = parseInt(process.env.ZW_UNSOLICITED_MS || "0", 10);
const pendingNode = parseInt(process.env.ZW_PENDING_NODE || "0", 10);

exports.default = ({ require }) => {
	const { FunctionType } = require("@zwave-js/serial");
	const { getDefaultSupportedFunctionTypes } = require("@zwave-js/testing");
	return {
		onInit(controller, nodes) {
			// Node 7 is dead: it neither ACKs nor answers.
			const dead = nodes.find((n) => n.id === 7);
			dead.autoAckControllerFrames = false;
			dead.defineBehavior({ handleCC: () => ({ action: "stop" }) });

			if (pendingNode) {
				// Joins when the host starts inclusion (AddNodeToNetwork).
				controller.nodePendingInclusion = {
					id: pendingNode,
					capabilities: {
						genericDeviceClass: 0x10,
						specificDeviceClass: 0x01,
						// 0x85 Association: the host sets the lifeline after inclusion.
						commandClasses: [{ ccId: 0x25, version: 2, defaultValue: false }, { ccId: 0x85, version: 2 }],
					},
				};
			}
			if (unsolicitedMs) {
				const cc = require("@zwave-js/cc");
				const { createMockZWaveRequestFrame } = require("@zwave-js/testing");
				const send = (id, report) => nodes.find((n) => n.id === id)
					.sendToController(createMockZWaveRequestFrame(report, { ackRequested: false }))
					.catch((e) => console.error("unsolicited:", e.message));
				const to = { nodeId: controller.ownNodeId };
				setInterval(() => {
					send(2, new cc.MultilevelSensorCCReport({ ...to, type: 1, scale: 0, value: celsius() }));
					// Node 9, a battery multisensor: reports encoded by zwave-js
					// itself, an independent check of the driver's decoders.
					send(9, new cc.BatteryCCReport({ ...to, level: 87 }));
					send(9, new cc.BinarySensorCCReport({ ...to, type: 12, value: true })); // motion
					send(9, new cc.NotificationCCReport({ ...to, notificationType: 7, notificationEvent: 8, notificationStatus: 0xff }));
					send(9, new cc.MeterCCReport({ ...to, type: 1, scale: 8, value: 12.5, rateType: 1 })); // kvarh
				}, unsolicitedMs).unref();
			}
		},
		controller: {
			homeId: 0xc0ffee01,
			ownNodeId: 1,
			capabilities: {
				// The stock list lacks SoftReset: add it so the host's soft
				// reset path runs (the mock answers with SerialAPIStarted).
				supportedFunctionTypes: [...getDefaultSupportedFunctionTypes(), FunctionType.SoftReset],
			},
		},
		nodes: [
			{
				id: 2,
				capabilities: {
					genericDeviceClass: 0x21,
					specificDeviceClass: 0x01,
					commandClasses: [{
						ccId: 0x31,
						version: 5,
						sensors: { 1: { supportedScales: [0, 1] } }, // air temperature, °C and °F
						getValue: (type, scale) => {
							const c = celsius();
							return scale === 1 ? Math.round((c * 9 / 5 + 32) * 10) / 10 : c;
						},
					}],
				},
			},
			{
				id: 3,
				capabilities: {
					genericDeviceClass: 0x31,
					specificDeviceClass: 0x01,
					commandClasses: [{
						ccId: 0x32,
						version: 4,
						meterType: 1, // electric
						supportedScales: [0, 2], // kWh, W
						supportedRateTypes: [1], // consumed
						supportsReset: true,
						getValue: (scale) => (scale === 2 ? 1000 + (secs() % 60) : 1234.5 + secs() / 100),
					}],
				},
			},
			{
				id: 4,
				capabilities: {
					genericDeviceClass: 0x10,
					specificDeviceClass: 0x01,
					commandClasses: [{ ccId: 0x25, version: 2, defaultValue: false }],
				},
			},
			{
				id: 5,
				capabilities: {
					genericDeviceClass: 0x11,
					specificDeviceClass: 0x01,
					commandClasses: [{ ccId: 0x26, version: 4, defaultValue: 0 }],
				},
			},
			{
				id: 8, // two relays behind Multi Channel endpoints 1 and 2
				capabilities: {
					genericDeviceClass: 0x10,
					specificDeviceClass: 0x01,
					commandClasses: [{ ccId: 0x60, version: 4 }, { ccId: 0x25, version: 2 }],
					endpoints: [
						{ commandClasses: [{ ccId: 0x25, version: 2, defaultValue: false }] },
						{ commandClasses: [{ ccId: 0x25, version: 2, defaultValue: false }] },
					],
				},
			},
			{
				id: 9, // battery multisensor, reports only (see onInit)
				capabilities: {
					genericDeviceClass: 0x07,
					specificDeviceClass: 0x01,
					commandClasses: [
						{ ccId: 0x80, version: 1 },
						{ ccId: 0x30, version: 2 },
						{ ccId: 0x71, version: 8 },
						{ ccId: 0x32, version: 4 },
					],
				},
			},
			{
				id: 7,
				capabilities: {
					genericDeviceClass: 0x10,
					specificDeviceClass: 0x01,
					commandClasses: [{ ccId: 0x25, version: 2, defaultValue: false }],
				},
			},
		],
	};
};
