// Mock Z-Wave network for osgate's drivers/zwave tests, loaded by the
// zwave-js@15.29.0 mock server:
//   node -r ./preload.cjs node_modules/zwave-js/bin/mock-server.cjs -i 127.0.0.1 -p PORT -c mock-config.cjs
// Adapted from the team's recipe in shared/peers/zwave (not read at test time).
// The loader calls require(file).default({require}); the require it passes
// resolves zwave-js's own packages.
//
// The mock nodes answer with zwave-js's own command classes and security
// managers: their S0 and S2 encryption, nonces and key exchange are
// zwave-js's, an independent implementation of what the driver does.
// Lines starting "[mock]" on stdout record what the nodes saw; the tests
// read them.
//
// Nodes: 2 air temperature sensor whose value changes every second,
// 3 electricity meter (kWh, W), 4 relay (Binary Switch) with Supervision,
// configuration parameters, association groups and an interview, 5 dimmer
// (Multilevel Switch), 7 a relay that never answers (a dead node), 8 a
// double relay with two Multi Channel endpoints (the mock keeps one switch
// state per node, not per endpoint), 9 a battery multisensor that only
// pushes reports (some inside Supervision, CRC-16 and Transport Service),
// 10 a door lock included with S2 Access Control, 11 a temperature sensor
// included with S2 Authenticated, 12 a relay included with S0, 13 a
// battery sensor that sleeps and wakes up.
// Environment:
//   ZW_UNSOLICITED_MS   node 2 pushes an unsolicited temperature report this
//                       often, node 9 battery, motion, notification and
//                       meter, and every fifth time a supervised CO2
//                       report, a CRC-16 humidity report and a segmented
//                       illuminance report
//   ZW_TS_DROP=1        node 9 leaves out the middle segment of its first
//                       segmented report and sends it when asked
//   ZW_PENDING_NODE     id of a relay that joins at the next inclusion
//   ZW_PENDING          nodes that join at successive inclusions, e.g.
//                       "20:lock,21:lock,22:sensor,24:s0relay" (kinds:
//                       relay, lock, sensor, s0relay)
//   ZW_KEYS             the network keys (the JSON of the driver's
//                       keys.json); random when unset (the secure nodes
//                       10-12 then talk with keys the driver does not have)
//   ZW_SECURE_REPORT_MS once the driver asked node 11 for its temperature,
//                       node 11 pushes S2 temperature reports this often,
//                       and node 10 (ZW_SPOOF=1) a plain lock report
//   ZW_S2_LOSE          "AFTER:COUNT": after AFTER reports node 11 loses
//                       COUNT encrypted frames on the air (its nonces run
//                       ahead of the driver's)
//   ZW_WAKEUP_MS        node 13 wakes up this often (default: never)
//   ZW_SMARTSTART       SmartStart nodes, e.g. "30:sensor,31:sensor": while
//                       the host has the stick listen for SmartStart, each
//                       announces its NWI home id every second; the one
//                       the host then adds by its home ids joins
//   ZW_LIBRARY          the stick's library version (GetControllerVersion),
//                       e.g. "Z-Wave 4.61" for a stick without SmartStart
const crypto = require("crypto");
const t0 = Date.now();
const secs = () => Math.floor((Date.now() - t0) / 1000);
const celsius = () => 20 + (secs() % 100) / 10;
const env = (k, d = "") => process.env[k] || d;
const unsolicitedMs = parseInt(env("ZW_UNSOLICITED_MS", "0"), 10);
const secureReportMs = parseInt(env("ZW_SECURE_REPORT_MS", "0"), 10);
const wakeUpMs = parseInt(env("ZW_WAKEUP_MS", "0"), 10);
const log = (...a) => console.log("[mock]", ...a);

exports.default = ({ require }) => {
	const CC = require("@zwave-js/cc");
	const core = require("@zwave-js/core");
	const sapi = require("@zwave-js/serial/serialapi");
	const { FunctionType, Message, MessageType } = require("@zwave-js/serial");
	const { getDefaultSupportedFunctionTypes, createMockZWaveRequestFrame, MockZWaveFrameType } = require("@zwave-js/testing");
	const { SecurityClass } = core;

	const keys = env("ZW_KEYS") ? JSON.parse(env("ZW_KEYS")) : null;
	const key = (name) => Uint8Array.from(keys ? Buffer.from(keys[name], "hex") : crypto.randomBytes(16));
	const toHost = (node, cc, ackRequested = false) => node.sendToController(createMockZWaveRequestFrame(cc, { ackRequested }));
	const isRequest = (f) => f.type === MockZWaveFrameType.Request;

	// What a node got, with its encapsulations: "Security2CCMessageEncapsulation[S2_AccessControl] > SupervisionCCGet > DoorLockCCOperationSet".
	const chain = (cc) => {
		const parts = [];
		for (let c = cc; c; c = c.encapsulated) {
			let n = c.constructor.name;
			if (c instanceof CC.Security2CCMessageEncapsulation && c.securityClass != null) n += `[${SecurityClass[c.securityClass]}]`;
			if (c instanceof CC.SupervisionCCReport) n += `[session ${c.sessionId} ${core.SupervisionStatus[c.status]}]`;
			if (c instanceof CC.InvalidCC) n += `[${c.reason}]`;
			parts.push(n);
		}
		return parts.join(" > ");
	};
	// Logs what a node got once every encapsulation is removed (it runs
	// after the stock hooks decrypted it, and handles nothing).
	const logIncoming = {
		handleCC(controller, self, received) {
			let root = received;
			while (root.encapsulatingCC) root = root.encapsulatingCC;
			log(`node ${self.id} received ${chain(root)}`);
		},
	};

	// An S2 frame from a node needs the driver's entropy first.
	async function sendS2(controller, node, report) {
		const sm = node.securityManagers.securityManager2;
		const st = sm.getSPANState(controller.ownNodeId).type;
		if (st === core.SPANState.None || st === core.SPANState.LocalEI) {
			await toHost(node, new CC.Security2CCNonceGet({ nodeId: controller.ownNodeId }));
			await node.expectControllerFrame((f) => isRequest(f) && f.payload instanceof CC.Security2CCNonceReport && f.payload.SOS, { timeout: 3000 });
		}
		await toHost(node, CC.Security2CC.encapsulate(report, node.id, node.securityManagers));
	}
	// An S2 frame that is lost on the air: the node used a nonce, the
	// driver never sees it.
	async function loseS2(node, report) {
		const enc = CC.Security2CC.encapsulate(report, node.id, node.securityManagers);
		await enc.serialize({ nodeIdType: core.NodeIDType.Short, ...node.encodingContext });
	}

	// Behaviors of pending secure nodes, which zwave-js's stock mock does
	// not have: a node asking for S2 Authenticated or Access Control hides
	// the first two bytes of its public key (the PIN, as real devices do),
	// and its echo of KEX Set carries the keys it was granted (the stock
	// mock echoes the keys it asked for).
	const hidePIN = {
		transformResponse(controller, self, received, response) {
			const cc = response.cc;
			const auth = self.capabilities.securityClasses.has(SecurityClass.S2_AccessControl) || self.capabilities.securityClasses.has(SecurityClass.S2_Authenticated);
			if (response.action === "sendCC" && cc instanceof CC.Security2CCPublicKeyReport && !cc.includingNode && auth) {
				const pub = Uint8Array.from(cc.publicKey);
				pub[0] = 0;
				pub[1] = 0;
				cc.publicKey = pub;
			}
			return response;
		},
	};
	const echoGranted = {
		transformIncomingCC(controller, self, received) {
			if (received instanceof CC.Security2CCKEXSet && !received.echo) {
				self.capabilities.securityClasses = new Set(received.grantedKeys);
			}
			return received;
		},
	};

	// Association groups (the stock mock has no Association behavior):
	// group 1 is the Lifeline.
	const associations = {
		handleCC(controller, self, received) {
			const groups = self.state.get("assoc") ?? new Map([[1, []], [2, []]]);
			self.state.set("assoc", groups);
			if (received instanceof CC.AssociationCCSupportedGroupingsGet) {
				return { action: "sendCC", cc: new CC.AssociationCCSupportedGroupingsReport({ nodeId: controller.ownNodeId, groupCount: groups.size }) };
			}
			if (received instanceof CC.AssociationCCGet) {
				return { action: "sendCC", cc: new CC.AssociationCCReport({ nodeId: controller.ownNodeId, groupId: received.groupId, maxNodes: 5, nodeIds: groups.get(received.groupId) ?? [], reportsToFollow: 0 }) };
			}
			if (received instanceof CC.AssociationCCSet) {
				const g = groups.get(received.groupId);
				if (!g) return { action: "fail" };
				for (const id of received.nodeIds) if (!g.includes(id)) g.push(id);
				return { action: "ok" };
			}
			if (received instanceof CC.AssociationCCRemove) {
				const g = groups.get(received.groupId);
				if (!g) return { action: "fail" };
				groups.set(received.groupId, g.filter((id) => !received.nodeIds.includes(id)));
				return { action: "ok" };
			}
		},
	};

	// A battery node: asleep it neither acknowledges nor answers; every
	// ZW_WAKEUP_MS it sends a Wake Up Notification and listens until the
	// driver says No More Information (or 10 s pass).
	function sleeper(controller, node) {
		const sleep = (why) => {
			node.state.set("awake", false);
			node.autoAckControllerFrames = false;
			log(`node ${node.id} sleeps (${why})`);
		};
		node.state.set("interval", 3600);
		sleep("start");
		node.defineBehavior({
			handleCC(controller, self, received) {
				if (!self.state.get("awake")) return { action: "stop" };
				if (received instanceof CC.WakeUpCCNoMoreInformation) {
					sleep("no more information");
					return { action: "stop" };
				}
				if (received instanceof CC.WakeUpCCIntervalGet) {
					// zwave-js only parses this report: write it raw.
					const i = self.state.get("interval");
					return { action: "sendCC", cc: new CC.CommandClass({ nodeId: controller.ownNodeId, ccId: 0x84, ccCommand: 0x06, payload: Uint8Array.from([i >> 16, i >> 8, i, controller.ownNodeId]) }) };
				}
				if (received instanceof CC.BatteryCCGet) {
					return { action: "sendCC", cc: new CC.BatteryCCReport({ nodeId: controller.ownNodeId, level: 77 }) };
				}
				if (received instanceof CC.WakeUpCCIntervalSet) {
					self.state.set("interval", received.wakeUpInterval);
					log(`node ${self.id} wake-up interval ${received.wakeUpInterval}`);
					return { action: "ok" };
				}
			},
		}, logIncoming);
		if (!wakeUpMs) return;
		setInterval(() => {
			if (node.state.get("awake")) return;
			node.state.set("awake", true);
			node.autoAckControllerFrames = true;
			log(`node ${node.id} woke up`);
			toHost(node, new CC.WakeUpCCWakeUpNotification({ nodeId: controller.ownNodeId })).catch((e) => console.error("wake up:", e.message));
			setTimeout(() => node.state.get("awake") && sleep("timeout"), 10000).unref();
		}, wakeUpMs).unref();
	}

	// Node kinds that can join at an inclusion (ZW_PENDING).
	const kinds = {
		relay: () => ({ genericDeviceClass: 0x10, specificDeviceClass: 0x01, commandClasses: [{ ccId: 0x25, version: 2, defaultValue: false }, { ccId: 0x85, version: 2 }] }),
		lock: () => ({
			genericDeviceClass: 0x40, specificDeviceClass: 0x03, securityClasses: new Set([SecurityClass.S2_AccessControl]),
			commandClasses: [{ ccId: 0x9f, version: 1 }, { ccId: 0x62, version: 4, secure: true }, { ccId: 0x6c, version: 1, secure: true }, { ccId: 0x85, version: 2, secure: true },
				{ ccId: 0x72, version: 2, secure: true }, { ccId: 0x86, version: 3, secure: true }, { ccId: 0x5e, version: 2 }],
		}),
		sensor: () => ({
			genericDeviceClass: 0x21, specificDeviceClass: 0x01, securityClasses: new Set([SecurityClass.S2_Authenticated, SecurityClass.S2_Unauthenticated]),
			commandClasses: [{ ccId: 0x9f, version: 1 }, { ccId: 0x31, version: 5, secure: true, sensors: { 1: { supportedScales: [0] } }, getValue: () => 21.5 }],
		}),
		s0relay: () => ({
			genericDeviceClass: 0x10, specificDeviceClass: 0x01, securityClasses: new Set([SecurityClass.S0_Legacy]),
			commandClasses: [{ ccId: 0x98, version: 1 }, { ccId: 0x25, version: 2, secure: true, defaultValue: false }],
		}),
	};
	const pendingSpecs = env("ZW_PENDING") || (env("ZW_PENDING_NODE") ? `${env("ZW_PENDING_NODE")}:relay` : "");
	// Each pending node's key pair is made now, so that its DSK (and PIN)
	// is in the log before the inclusion starts, as it is on a label.
	const rawKey = (k, part) => Uint8Array.from(Buffer.from(k.export({ format: "jwk" })[part], "base64url"));
	// The stock MockNode gives a secure node every S2 key the controller
	// has, whatever it asked for: take back the classes it was not
	// granted, or it would talk at a class the driver never gave it.
	const onlyOwnClasses = (controller, node) => {
		for (const cls of [SecurityClass.S2_AccessControl, SecurityClass.S2_Authenticated, SecurityClass.S2_Unauthenticated]) {
			if (!node.capabilities.securityClasses.has(cls)) node.encodingContext.setSecurityClass(controller.ownNodeId, cls, false);
		}
	};
	const makePending = (label) => (spec) => {
		const [id, kind] = spec.split(":");
		const kp = crypto.generateKeyPairSync("x25519");
		const pair = { publicKey: rawKey(kp.publicKey, "x"), privateKey: rawKey(kp.privateKey, "d") };
		log(`${label} node ${id} (${kind}) DSK ${core.dskToString(pair.publicKey.subarray(0, 16))}`);
		return {
			dsk: pair.publicKey.subarray(0, 16),
			id: parseInt(id, 10),
			capabilities: kinds[kind](),
			setup: (node) => {
				node.ecdhKeyPair = pair;
				onlyOwnClasses(node.controller, node);
				node.defineBehavior(logIncoming, hidePIN, echoGranted, associations);
			},
		};
	};
	const pending = pendingSpecs.split(",").filter(Boolean).map(makePending("pending"));
	const smartStartNodes = env("ZW_SMARTSTART").split(",").filter(Boolean).map(makePending("smartstart"));
	// SmartStart, which the stock mock lacks. Listening mode (AddNodeToNetwork
	// 0x09, no callback): every second each SmartStart node not yet added
	// announces its NWI home id (bytes 9..12 of its DSK, bits 7..6 of the
	// first set, bit 0 of the last cleared) in an ApplicationUpdateRequest
	// "SmartStart home id received". SmartStart DSK mode (0x08, NWI and
	// auth home id after the callback id): the node with that NWI home id
	// becomes the pending node and the stock inclusion runs. Any other
	// inclusion, exclusion or a stop ends listening.
	const nwiOf = (dsk) => {
		const h = Uint8Array.from(dsk.subarray(8, 12));
		h[0] |= 0xc0;
		h[3] &= 0xfe;
		return h;
	};
	const hex = (b) => Buffer.from(b).toString("hex");
	// zwave-js keeps only the mode and callback id of AddNodeToNetwork
	// requests: keep the raw payload too (the home ids).
	const addNodeFrom = sapi.AddNodeToNetworkRequest.from;
	sapi.AddNodeToNetworkRequest.from = function (raw, ctx) {
		const msg = addNodeFrom.call(this, raw, ctx);
		msg.rawPayload = Uint8Array.from(raw.payload);
		return msg;
	};
	let listening = false;
	let announcer;
	const stopListening = (why) => {
		if (listening) log(`smartstart listening stopped (${why})`);
		listening = false;
		clearInterval(announcer);
	};
	const announce = (controller) => {
		for (const n of smartStartNodes) {
			const c = n.capabilities;
			const payload = [0x85, 0x00, 0x00, ...nwiOf(n.dsk), 3 + 1, 0x04, c.genericDeviceClass, c.specificDeviceClass, 0x9f];
			controller.sendMessageToHost(new Message({ type: MessageType.Request, functionType: FunctionType.ApplicationUpdateRequest, payload: Uint8Array.from(payload) }))
				.catch((e) => console.error("smartstart announce:", e.message));
			log(`smartstart node ${n.id} announced ${hex(nwiOf(n.dsk))}`);
		}
	};
	const smartStart = {
		onHostMessage(controller, msg) {
			if (msg instanceof sapi.RemoveNodeFromNetworkRequest) stopListening("exclusion");
			if (!(msg instanceof sapi.AddNodeToNetworkRequest)) return false;
			if (msg.addNodeType === sapi.AddNodeType.SmartStartListen) {
				if (!listening) log("smartstart listening");
				listening = true;
				clearInterval(announcer);
				announcer = setInterval(() => listening && announce(controller), 1000);
				announcer.unref();
				return true; // no callback
			}
			if (msg.addNodeType === sapi.AddNodeType.Stop && listening) {
				stopListening("stop");
				return msg.callbackId === 0; // a stop of listening has no callback
			}
			if (msg.addNodeType === sapi.AddNodeType.SmartStartDSK) {
				stopListening("smartstart inclusion");
				const nwi = hex(msg.rawPayload.subarray(2, 6));
				const i = smartStartNodes.findIndex((n) => hex(nwiOf(n.dsk)) === nwi);
				log(`smartstart inclusion of ${nwi}: ${i < 0 ? "no such node" : `node ${smartStartNodes[i].id}`}`);
				if (i >= 0 && !controller.nodePendingInclusion) controller.nodePendingInclusion = smartStartNodes.splice(i, 1)[0];
				return false; // the stock inclusion (and nextPending) go on
			}
			stopListening("inclusion");
			return false;
		},
	};
	// Each inclusion takes the next pending node.
	const nextPending = {
		onHostMessage(controller, msg) {
			if (msg instanceof sapi.AddNodeToNetworkRequest && msg.addNodeType !== sapi.AddNodeType.Stop && msg.addNodeType !== sapi.AddNodeType.SmartStartDSK && !controller.nodePendingInclusion && pending.length) {
				controller.nodePendingInclusion = pending.shift();
			}
			return false;
		},
	};
	// RemoveFailedNode, which the stock mock lacks, done like a stick: the
	// node is pinged and removed only when it does not acknowledge.
	const removeFailed = {
		async onHostMessage(controller, msg) {
			if (!(msg instanceof sapi.RemoveFailedNodeRequest)) return false;
			const node = controller.nodes.get(msg.failedNodeId);
			// zwave-js only parses these two messages: write them raw.
			const raw = (type, payload) => new Message({ type, functionType: FunctionType.RemoveFailedNode, payload: Uint8Array.from(payload) });
			await controller.sendMessageToHost(raw(MessageType.Response, [node ? 0 : 8]));
			if (!node) return true;
			let answered = false;
			try {
				const ack = await controller.sendToNode(node, createMockZWaveRequestFrame(new CC.NoOperationCC({ nodeId: node.id }), { ackRequested: true }));
				answered = !!ack?.ack;
			} catch {
				answered = false;
			}
			if (!answered) controller.removeNode(node);
			log(`remove failed node ${node.id}: ${answered ? "it answers, kept" : "removed"}`);
			await controller.sendMessageToHost(raw(MessageType.Request, [msg.callbackId, answered ? 0 : 1]));
			return true;
		},
	};

	return {
		onInit(controller, nodes) {
			const byId = (id) => nodes.find((n) => n.id === id);
			// Node 7 is dead: it neither ACKs nor answers.
			const dead = byId(7);
			dead.autoAckControllerFrames = false;
			dead.defineBehavior({ handleCC: () => ({ action: "stop" }) });
			byId(4).defineBehavior(logIncoming, associations);
			byId(9).defineBehavior(logIncoming);
			byId(10).defineBehavior(logIncoming, associations);
			byId(11).defineBehavior(logIncoming);
			byId(12).defineBehavior(logIncoming);
			for (const id of [10, 11]) onlyOwnClasses(controller, byId(id));
			sleeper(controller, byId(13));

			const to = { nodeId: controller.ownNodeId };
			if (unsolicitedMs) {
				const send = (id, report) => toHost(byId(id), report).catch((e) => console.error("unsolicited:", e.message));
				let round = 0;
				setInterval(async () => {
					round++;
					send(2, new CC.MultilevelSensorCCReport({ ...to, type: 1, scale: 0, value: celsius() }));
					// Node 9, a battery multisensor: reports encoded by zwave-js
					// itself, an independent check of the driver's decoders.
					send(9, new CC.BatteryCCReport({ ...to, level: 87 }));
					send(9, new CC.BinarySensorCCReport({ ...to, type: 12, value: true })); // motion
					send(9, new CC.NotificationCCReport({ ...to, notificationType: 7, notificationEvent: 8, notificationStatus: 0xff }));
					send(9, new CC.MeterCCReport({ ...to, type: 1, scale: 8, value: 12.5, rateType: 1 })); // kvarh
					if (round % 5 !== 1) return;
					// CO2 inside Supervision: the driver must answer.
					send(9, CC.SupervisionCC.encapsulate(new CC.MultilevelSensorCCReport({ ...to, type: 0x11, scale: 0, value: 450 }), round % 64, false));
					// Humidity inside CRC-16.
					send(9, CC.CRC16CC.encapsulate(new CC.MultilevelSensorCCReport({ ...to, type: 5, scale: 0, value: 55 })));
					// Illuminance in three Transport Service segments.
					await segmented(byId(9), new CC.MultilevelSensorCCReport({ ...to, type: 3, scale: 1, value: 1234 }), round);
				}, unsolicitedMs).unref();
			}
			if (secureReportMs) {
				// Node 11 starts its S2 reports once the driver asked it for
				// a value (both sides then have a SPAN), one at a time.
				const [after, count] = env("ZW_S2_LOSE", "0:0").split(":").map((x) => parseInt(x, 10));
				let n = 0;
				const next = async () => {
					n++;
					const report = new CC.MultilevelSensorCCReport({ ...to, type: 1, scale: 0, value: 30 + (n % 10) });
					try {
						if (n > after && n <= after + count) {
							await loseS2(byId(11), report);
							log(`node 11 lost S2 frame ${n} on the air`);
						} else {
							await sendS2(controller, byId(11), report);
							log(`node 11 sent S2 report ${n}`);
						}
						if (env("ZW_SPOOF")) {
							// A forged "unlocked" report without security.
							await toHost(byId(10), new CC.DoorLockCCOperationReport({ ...to, currentMode: 0x00, outsideHandlesCanOpenDoor: [true, true, true, true], insideHandlesCanOpenDoor: [true, true, true, true], lockTimeout: 0 }));
						}
					} catch (e) {
						console.error("secure report:", e.message);
					}
					setTimeout(next, secureReportMs).unref();
				};
				let started = false;
				byId(11).defineBehavior({
					handleCC(controller, self, received) {
						if (!started && received instanceof CC.MultilevelSensorCCGet) {
							started = true;
							setTimeout(next, secureReportMs).unref();
						}
					},
				});
			}
		},
		controller: {
			homeId: 0xc0ffee01,
			ownNodeId: 1,
			securityKeys: {
				S0_Legacy: key("s0"),
				S2_Unauthenticated: key("s2_unauthenticated"),
				S2_Authenticated: key("s2_authenticated"),
				S2_AccessControl: key("s2_access_control"),
			},
			capabilities: {
				// The stock list lacks SoftReset and RemoveFailedNode: add
				// them so the host's soft reset path runs (the mock answers
				// with SerialAPIStarted) and failed nodes can be removed.
				supportedFunctionTypes: [...getDefaultSupportedFunctionTypes(), FunctionType.SoftReset, FunctionType.RemoveFailedNode],
				...(env("ZW_LIBRARY") ? { libraryVersion: env("ZW_LIBRARY") } : {}),
			},
			behaviors: [smartStart, nextPending, removeFailed],
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
				id: 4, // a relay with Supervision, parameters, associations and an interview
				capabilities: {
					genericDeviceClass: 0x10,
					specificDeviceClass: 0x01,
					manufacturerId: 0x0086,
					productType: 0x0003,
					productId: 0x0060,
					firmwareVersion: "1.12",
					commandClasses: [
						{ ccId: 0x25, version: 2, defaultValue: false },
						{ ccId: 0x6c, version: 1 },
						{ ccId: 0x85, version: 2 },
						{ ccId: 0x72, version: 2 },
						{ ccId: 0x86, version: 3 },
						{ ccId: 0x5e, version: 2 },
						{
							ccId: 0x70,
							version: 4,
							parameters: [
								{ "#": 1, valueSize: 1, minValue: 0, maxValue: 99, defaultValue: 10, format: 0 },
								{ "#": 2, valueSize: 2, minValue: -1000, maxValue: 1000, defaultValue: 300, format: 0 },
							],
						},
					],
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
						{ ccId: 0x6c, version: 1 },
						{ ccId: 0x56, version: 1 },
						{ ccId: 0x55, version: 2 },
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
			{
				id: 10, // a door lock included with S2 Access Control
				capabilities: kinds.lock(),
			},
			{
				id: 11, // a temperature sensor included with S2 Authenticated
				capabilities: {
					genericDeviceClass: 0x21,
					specificDeviceClass: 0x01,
					securityClasses: new Set([SecurityClass.S2_Authenticated]),
					commandClasses: [{ ccId: 0x9f, version: 1 }, { ccId: 0x31, version: 5, secure: true, sensors: { 1: { supportedScales: [0] } }, getValue: () => 25 }],
				},
			},
			{
				id: 12, // a relay included with S0
				capabilities: kinds.s0relay(),
			},
			{
				id: 13, // a battery sensor that sleeps (see sleeper)
				capabilities: {
					genericDeviceClass: 0x21,
					specificDeviceClass: 0x01,
					isListening: false,
					isFrequentListening: false,
					commandClasses: [{ ccId: 0x84, version: 2 }, { ccId: 0x80, version: 1 },
						{ ccId: 0x31, version: 5, sensors: { 1: { supportedScales: [0] } }, getValue: () => 18.5 }],
				},
			},
		],
	};

	// segmented sends a report in three Transport Service segments; with
	// ZW_TS_DROP the middle one of the first datagram is held back until
	// the driver asks for it.
	async function segmented(node, report, round) {
		const bytes = await report.serialize({ nodeIdType: core.NodeIDType.Short, ...node.encodingContext });
		const sessionId = round % 16;
		const cut = [0, 3, Math.ceil(bytes.length * 2 / 3), bytes.length];
		const seg = (i) => i === 0
			? new CC.TransportServiceCCFirstSegment({ nodeId: 1, datagramSize: bytes.length, sessionId, partialDatagram: bytes.subarray(cut[0], cut[1]) })
			: new CC.TransportServiceCCSubsequentSegment({ nodeId: 1, datagramSize: bytes.length, sessionId, datagramOffset: cut[i], partialDatagram: bytes.subarray(cut[i], cut[i + 1]) });
		const drop = env("ZW_TS_DROP") && round === 1;
		if (drop) {
			node.defineBehavior({
				handleCC(controller, self, received) {
					if (received instanceof CC.TransportServiceCCSegmentRequest && received.sessionId === sessionId && received.datagramOffset === cut[1]) {
						log(`node 9 resends segment at ${cut[1]} of session ${sessionId}`);
						return { action: "sendCC", cc: seg(1) };
					}
				},
			});
		}
		for (let i = 0; i < 3; i++) {
			if (drop && i === 1) {
				log(`node 9 holds back segment at ${cut[1]} of session ${sessionId}`);
				continue;
			}
			await toHost(node, seg(i)).catch((e) => console.error("segment:", e.message));
		}
	}
};
