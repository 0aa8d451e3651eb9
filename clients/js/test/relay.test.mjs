// relay.test.mjs -- clients/js/relay.mjs against a real relayd over WebSocket
// (node:test; run by meson, suite 'js'; exit status is the verdict).
//
// Env: RELAYD_BIN (the relayd binary), RELAY_TEST_GUARD (optional exec wrapper
// that kills relayd when this process dies). Node 20 has no global WebSocket:
// the client is handed Debian's `ws` package (/usr/share/nodejs/ws), or the
// one NODE_PATH / node_modules resolves.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { RelayClient, RelayError } from '../relay.mjs';

const require = createRequire(import.meta.url);
function loadWs() {
	for (const m of ['ws', '/usr/share/nodejs/ws']) {
		try { return require(m); } catch { /* next */ }
	}
	return null;
}
const wsMod = loadWs();
const WebSocketImpl = globalThis.WebSocket ?? wsMod?.WebSocket ?? wsMod;
if (!WebSocketImpl) {
	console.log('# SKIP: no WebSocket implementation (install node-ws)');
	process.exit(77);
}

const servers = new Set();
after(() => { for (const s of servers) s.child.kill('SIGKILL'); });

/** Starts relayd with a WebSocket listener; resolves { child, wsPort, url, stop }. */
async function startRelayd(extra = [], wsPort = 0) {
	const bin = process.env.RELAYD_BIN;
	assert.ok(bin, 'RELAYD_BIN is not set');
	const args = ['--port', '0', '--ws-port', String(wsPort), '--workers', '2', ...extra];
	const guard = process.env.RELAY_TEST_GUARD;
	const child = guard ? spawn(guard, [String(process.pid), bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
		: spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	child.stderr.on('data', () => {}); // relayd logs to stderr; keep the pipe drained
	let out = '';
	const port = await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error('relayd did not report its ws listener')), 10000);
		child.stdout.on('data', (d) => {
			out += d.toString();
			const m = out.match(/relayd wss? listening on [^\n]*:(\d+)/);
			if (m) { clearTimeout(timer); resolve(Number(m[1])); }
		});
		child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`relayd exited early (${code})`)); });
	});
	const s = {
		child, wsPort: port,
		url: `${extra.includes('--ws-tls') ? 'wss://localhost' : 'ws://127.0.0.1'}:${port}/relay`,
		async stop() {
			servers.delete(s);
			if (child.exitCode !== null || child.signalCode !== null) return;
			const gone = once(child, 'exit');
			child.kill('SIGKILL');
			await gone;
		},
	};
	servers.add(s);
	return s;
}

function client(url, userId, extra = {}) {
	return new RelayClient({ url, userId, WebSocket: WebSocketImpl, timeoutMs: 5000,
		reconnect: { minDelayMs: 50, maxDelayMs: 200 }, ...extra });
}

/** Resolves with the first <event> of <c> that satisfies <pred> (rejects after ms). */
function waitFor(c, event, pred = () => true, ms = 5000) {
	return new Promise((resolve, reject) => {
		const fn = (v) => { if (pred(v)) { clearTimeout(timer); c.off(event, fn); resolve(v); } };
		const timer = setTimeout(() => { c.off(event, fn); reject(new Error(`no '${event}' within ${ms} ms`)); }, ms);
		c.on(event, fn);
	});
}

/** Collects every <event> of <c> into an array. */
function record(c, event) {
	const seen = [];
	c.on(event, (v) => seen.push(v));
	return seen;
}

test('connect says HELLO and resolves with the ack', async () => {
	const srv = await startRelayd();
	const a = client(srv.url, 'alice');
	const states = record(a, 'state');
	const hello = waitFor(a, 'hello');
	const ack = await a.connect();
	assert.equal(ack.status, 'connected');
	assert.equal(typeof ack.connectionId, 'string');
	assert.equal(a.connectionId, ack.connectionId);
	assert.equal(a.state, 'open');
	assert.deepEqual(await hello, ack);
	assert.deepEqual(states, ['connecting', 'open']);
	a.close();
	assert.equal(a.state, 'closed');
	await srv.stop();
});

test('two clients: join, presence, messages both ways, leave', async () => {
	const srv = await startRelayd();
	const a = client(srv.url, 'alice');
	const b = client(srv.url, 'bob');
	await a.connect();
	await b.connect();
	const ja = await a.join('lobby');
	assert.equal(ja.status, 'joined');
	assert.equal(ja.room, 'lobby');
	assert.ok(a.rooms.has('lobby'));
	const bobJoined = waitFor(a, 'presence', (p) => p.type === 'userJoined');
	const jb = await b.join('lobby');
	assert.equal(jb.members, 2);
	const p = await bobJoined;
	assert.equal(p.room, 'lobby');
	assert.equal(p.userId, 'bob');
	assert.equal(p.connectionId, b.connectionId);

	const atB = waitFor(b, 'message');
	assert.equal(a.publish('lobby', { text: 'hi bob', n: [1, 2] }), true);
	const m1 = await atB;
	assert.equal(m1.room, 'lobby');
	assert.equal(m1.from, a.connectionId);
	assert.equal(m1.userId, 'alice');
	assert.deepEqual(m1.content, { text: 'hi bob', n: [1, 2] });
	assert.equal(typeof m1.timestamp, 'number');

	const atA = waitFor(a, 'message');
	b.publish('lobby', 'hi alice');
	const m2 = await atA;
	assert.equal(m2.userId, 'bob');
	assert.equal(m2.content, 'hi alice');

	const bobLeft = waitFor(a, 'presence', (q) => q.type === 'userLeft');
	const left = waitFor(b, 'left');
	const lack = await b.leave('lobby');
	assert.equal(lack.status, 'left');
	assert.equal(lack.room, 'lobby');
	assert.deepEqual(await left, lack);
	assert.equal(b.rooms.has('lobby'), false);
	assert.equal((await bobLeft).userId, 'bob');
	a.close();
	b.close();
	await srv.stop();
});

test('errors: NOT_IN_ROOM is an error event; a bad room name rejects join with INVALID_ROOM', async () => {
	const srv = await startRelayd();
	const a = client(srv.url, 'alice');
	await a.connect();
	const err = waitFor(a, 'error');
	a.publish('nowhere', 'x');
	const e = await err;
	assert.equal(e.code, 'NOT_IN_ROOM');
	assert.equal(e.fatal, false);

	const tooLong = 'x'.repeat(65); // room names are 1-64 bytes
	await assert.rejects(a.join(tooLong), (x) => {
		assert.ok(x instanceof RelayError, `not a RelayError: ${x}`);
		assert.equal(x.code, 'INVALID_ROOM');
		assert.equal(x.fatal, false);
		return true;
	});
	assert.equal(a.rooms.has(tooLong), false);
	// The connection is still usable.
	assert.equal((await a.join('good')).status, 'joined');
	a.close();
	await srv.stop();
});

test('a room name with surrounding whitespace: join and leave settle with the trimmed name', async () => {
	const srv = await startRelayd();
	const a = client(srv.url, 'alice');
	await a.connect();
	const ack = await a.join('  lobby\t');
	assert.equal(ack.room, 'lobby');
	assert.deepEqual([...a.rooms.keys()], ['lobby']);
	const lack = await a.leave(' lobby ');
	assert.equal(lack.room, 'lobby');
	assert.equal(a.rooms.size, 0);
	a.close();
	await srv.stop();
});

test('ping resolves with a round trip time and emits rtt', async () => {
	const srv = await startRelayd();
	const a = client(srv.url, 'alice');
	await a.connect();
	const ev = waitFor(a, 'rtt');
	const rtt = await a.ping();
	assert.equal(typeof rtt, 'number');
	assert.ok(rtt >= 0 && rtt < 5000, `rtt ${rtt}`);
	assert.equal(await ev, rtt);
	a.close();
	await srv.stop();
});

test('a lost connection is re-established and rooms are re-joined', async () => {
	const srv = await startRelayd();
	const a = client(srv.url, 'alice');
	const b = client(srv.url, 'bob');
	await a.connect();
	await b.connect();
	await a.join('lobby');
	await b.join('lobby');
	const firstId = a.connectionId;
	const states = record(a, 'state');
	const closed = waitFor(a, 'close');
	const rejoined = waitFor(a, 'joined', (j) => j.room === 'lobby');
	a._ws._socket.destroy(); // the TCP connection dies under the client
	const c = await closed;
	assert.equal(c.willReconnect, true);
	const j = await rejoined;
	assert.equal(j.status, 'joined');
	assert.notEqual(a.connectionId, firstId);
	assert.deepEqual(states, ['reconnecting', 'open']);
	assert.ok(a.rooms.has('lobby'));
	// The re-joined room works.
	const got = waitFor(a, 'message');
	b.publish('lobby', 'after reconnect');
	assert.equal((await got).content, 'after reconnect');
	a.close();
	b.close();
	await srv.stop();
});

test('a restarted relayd on the same port: the client comes back and re-joins', async () => {
	let srv = await startRelayd();
	const port = srv.wsPort;
	const a = client(srv.url, 'alice');
	await a.connect();
	await a.join('lobby');
	const closed = waitFor(a, 'close');
	const rejoined = waitFor(a, 'joined', (j) => j.room === 'lobby', 10000);
	await srv.stop();
	await closed;
	srv = await startRelayd([], port);
	const j = await rejoined;
	assert.equal(j.status, 'joined');
	assert.equal(a.state, 'open');
	a.close();
	await srv.stop();
});

test('with history: a re-join resumes (recovered:true) and the missed message arrives once', async () => {
	const srv = await startRelayd(['--history-size', '100']);
	// Alice reconnects only when told to: a long backoff, then a nudge.
	const a = client(srv.url, 'alice', { reconnect: { minDelayMs: 60000, maxDelayMs: 60000 } });
	const b = client(srv.url, 'bob');
	await a.connect();
	await b.connect();
	const ja = await a.join('physics');
	assert.equal(typeof ja.epoch, 'string');
	await b.join('physics');
	const before = waitFor(a, 'message');
	b.publish('physics', 'one');
	assert.equal((await before).seq, ja.seq + 1);

	const closed = waitFor(a, 'close');
	a._ws._socket.destroy();
	await closed;
	b.publish('physics', 'two (missed)');
	await b.ping(); // the publish is processed (and stored) before the pong

	const msgs = record(a, 'message');
	const rejoined = waitFor(a, 'joined', (j) => j.room === 'physics');
	clearTimeout(a._retryTimer);
	a._open('reconnecting').catch(() => {});
	const j = await rejoined;
	assert.equal(j.recovered, true);
	// A live message after the replay proves the replay is complete.
	const live = waitFor(a, 'message', (m) => m.content === 'three');
	b.publish('physics', 'three');
	await live;
	assert.deepEqual(msgs.map((m) => m.content), ['two (missed)', 'three']);
	assert.deepEqual(msgs.map((m) => m.seq), [ja.seq + 2, ja.seq + 3]);
	assert.equal(a.rooms.get('physics').seq, ja.seq + 3);
	a.close();
	b.close();
	await srv.stop();
});

test('wss://: the client over TLS (a ws constructor that trusts the test CA); an unknown CA is refused', async (t) => {
	if (!wsMod) return t.skip('TLS options need the ws package');
	const dir = mkdtempSync(join(tmpdir(), 'relay-js-wss-'));
	t.after(() => rmSync(dir, { recursive: true, force: true }));
	const cert = join(dir, 'cert.pem'), key = join(dir, 'key.pem');
	execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
		'-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
		'-keyout', key, '-out', cert], { stdio: 'ignore' });
	const srv = await startRelayd(['--ws-tls', '--tls-cert', cert, '--tls-key', key]);
	assert.match(srv.url, /^wss:/);
	// relay.mjs passes (url, protocol) only: TLS options ride on the constructor.
	const ca = readFileSync(cert);
	const WsCa = class extends WebSocketImpl {
		constructor(url, protocols) { super(url, protocols, { ca }); }
	};
	const a = client(srv.url, 'alice', { WebSocket: WsCa });
	const b = client(srv.url, 'bob', { WebSocket: WsCa });
	await a.connect();
	await b.connect();
	await a.join('secure');
	await b.join('secure');
	const got = waitFor(b, 'message', (m) => m.room === 'secure');
	await a.publish('secure', { text: 'over wss' });
	const m = await got;
	assert.deepEqual(m.content, { text: 'over wss' });
	assert.equal(m.userId, 'alice');
	const stranger = client(srv.url, 'eve', { reconnect: false });
	await assert.rejects(stranger.connect(), /cannot connect|closed/);
	a.close();
	b.close();
	await srv.stop();
});
