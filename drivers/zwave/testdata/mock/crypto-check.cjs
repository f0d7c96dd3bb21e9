// Computes Z-Wave security primitives with zwave-js's own implementation
// (@zwave-js/core, installed with the mock) for osgate's crypto tests, so
// that the driver's Go code is checked against an independent one.
// Reads one JSON object of hex-encoded inputs on stdin, prints one JSON
// object of hex-encoded results.
const path = require("path");
const core = require(require.resolve("@zwave-js/core", { paths: [path.join(__dirname, "node_modules/zwave-js")] }));

const hex = (b) => Buffer.from(b).toString("hex");
const bin = (s) => Uint8Array.from(Buffer.from(s, "hex"));

async function main() {
	const chunks = [];
	for await (const c of process.stdin) chunks.push(c);
	const inp = JSON.parse(Buffer.concat(chunks).toString());
	const out = {};

	out.cmac = hex(await core.computeCMAC(bin(inp.msg), bin(inp.key)));

	const nk = await core.deriveNetworkKeys(bin(inp.pnk));
	out.nk_ccm = hex(nk.keyCCM);
	out.nk_pers = hex(nk.personalizationString);
	out.nk_mpan = hex(nk.keyMPAN);

	const a = await core.keyPairFromRawECDHPrivateKey(bin(inp.priv_a));
	const b = await core.keyPairFromRawECDHPrivateKey(bin(inp.priv_b));
	out.pub_a = hex(a.publicKey);
	out.pub_b = hex(b.publicKey);
	const shared = await core.deriveSharedECDHSecret({ publicKey: b.publicKey, privateKey: a.privateKey });
	out.shared = hex(shared);
	const prk = await core.computePRK(shared, a.publicKey, b.publicKey);
	out.prk = hex(prk);
	const tk = await core.deriveTempKeys(prk);
	out.tk_ccm = hex(tk.tempKeyCCM);
	out.tk_pers = hex(tk.tempPersonalizationString);
	out.dsk = core.dskToString(b.publicKey.subarray(0, 16));

	const mei = await core.deriveMEI(await core.computeNoncePRK(bin(inp.sei), bin(inp.rei)));
	out.mei = hex(mei);
	const drbg = new core.CtrDRBG();
	await drbg.init(Uint8Array.from(mei), nk.personalizationString);
	out.nonces = [];
	for (let i = 0; i < 3; i++) out.nonces.push(hex((await drbg.generate(16)).subarray(0, 13)));

	const ccm = await core.encryptAES128CCM(bin(inp.plain), nk.keyCCM, bin(inp.nonce), bin(inp.aad), 8);
	out.ccm = hex(ccm.ciphertext) + hex(ccm.authTag);

	const auth = await core.generateAuthKey(bin(inp.pnk));
	const enc = await core.generateEncryptionKey(bin(inp.pnk));
	out.s0_auth = hex(auth);
	out.s0_enc = hex(enc);
	out.s0_ofb = hex(await core.encryptAES128OFB(bin(inp.plain), enc, bin(inp.iv)));
	out.s0_mac = hex(await core.computeMAC(bin(inp.aad), auth));

	process.stdout.write(JSON.stringify(out));
}
main().catch((e) => {
	console.error(e);
	process.exit(1);
});
