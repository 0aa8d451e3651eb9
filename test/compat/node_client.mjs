// node_client.mjs -- compatibility check: a client written the way the original
// Node.js Relay server's TypeScript client talks (net.Socket, a Buffer.concat
// receive buffer, JSON payloads with flag 0x01, JSON.parse on receipt, an empty
// HEARTBEAT with flags 0), run unmodified against relayd.
//
// Usage: node node_client.mjs   (env RELAYD_BIN: the relayd binary)
// Starts relayd on --port 0, connects two clients, and checks connect, HELLO,
// join, presence, chat both ways, heartbeat, leave and disconnect. Exit status
// is the verdict.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { EventEmitter, once } from 'node:events';
import assert from 'node:assert/strict';

const T = { HELLO: 1, JOIN_ROOM: 2, LEAVE_ROOM: 3, MESSAGE: 4, HEARTBEAT: 5, ERROR: 6 };
const FLAG_JSON = 0x01;

function encode(type, payload) {
	const body = payload === undefined ? Buffer.alloc(0)
		: Buffer.from(JSON.stringify(payload), 'utf8');
	const head = Buffer.alloc(7);
	head.writeUInt32BE(3 + body.length, 0);
	head[4] = 1;
	head[5] = type;
	head[6] = body.length ? FLAG_JSON : 0;
	return Buffer.concat([head, body]);
}

// Returns { frame, rest } or null when the buffer holds no complete frame.
function extract(buf) {
	if (buf.length < 4) return null;
	const len = buf.readUInt32BE(0);
	if (buf.length < 4 + len) return null;
	const frame = { version: buf[4], type: buf[5], flags: buf[6], payload: buf.subarray(7, 4 + len) };
	return { frame, rest: buf.subarray(4 + len) };
}

class Client extends EventEmitter {
	constructor(name) { super(); this.name = name; this.buf = Buffer.alloc(0); this.queue = []; this.waiters = []; }
	async connect(port) {
		this.sock = connect(port, '127.0.0.1');
		await once(this.sock, 'connect');
		this.sock.on('data', (chunk) => this.onData(chunk));
		this.sock.on('close', () => { this.closed = true; this.flushWaiters(); });
	}
	onData(chunk) {
		this.buf = Buffer.concat([this.buf, chunk]);
		for (let r; (r = extract(this.buf)); ) {
			this.buf = r.rest;
			const f = r.frame;
			const payload = f.payload.length === 0 ? null
				: (f.flags & FLAG_JSON) ? JSON.parse(f.payload.toString('utf8')) : f.payload;
			this.queue.push({ version: f.version, type: f.type, flags: f.flags, payload });
		}
		this.flushWaiters();
	}
	flushWaiters() {
		while (this.waiters.length && (this.queue.length || this.closed)) {
			const w = this.waiters.shift();
			clearTimeout(w.timer);
			this.queue.length ? w.resolve(this.queue.shift()) : w.reject(new Error(`${this.name}: connection closed`));
		}
	}
	next(ms = 3000) {
		return new Promise((resolve, reject) => {
			const w = { resolve, reject };
			w.timer = setTimeout(() => {
				this.waiters.splice(this.waiters.indexOf(w), 1);
				reject(new Error(`${this.name}: no frame within ${ms} ms`));
			}, ms);
			this.waiters.push(w);
			this.flushWaiters();
		});
	}
	send(type, payload) { this.sock.write(encode(type, payload)); }
	hello(userId) { this.send(T.HELLO, { userId, clientVersion: '1.0.0' }); }
	joinRoom(room) { this.send(T.JOIN_ROOM, { room }); }
	leaveRoom(room) { this.send(T.LEAVE_ROOM, { room }); }
	sendMessage(room, content) { this.send(T.MESSAGE, { room, content }); }
	heartbeat() { this.send(T.HEARTBEAT); }
	disconnect() { this.sock.end(); }
}

async function startRelayd() {
	const bin = process.env.RELAYD_BIN;
	assert.ok(bin, 'RELAYD_BIN is not set');
	const child = spawn(bin, ['--port', '0', '--workers', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
	let out = '';
	const port = await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error('relayd did not report ready')), 10000);
		child.stdout.on('data', (d) => {
			out += d.toString();
			const m = out.match(/relayd listening on [^\n]*:(\d+) \(\d+ workers?\)/);
			if (m) { clearTimeout(timer); resolve(Number(m[1])); }
		});
		child.on('exit', (code) => reject(new Error(`relayd exited early (${code})`)));
	});
	return { child, port };
}

async function main() {
	const { child, port } = await startRelayd();
	const alice = new Client('alice');
	const bob = new Client('bob');
	try {
		await alice.connect(port);
		await bob.connect(port);

		alice.hello('alice');
		const ack = await alice.next();
		assert.equal(ack.type, T.HELLO);
		assert.equal(ack.flags, FLAG_JSON);
		assert.equal(ack.payload.status, 'connected');
		assert.match(ack.payload.connectionId, /^conn-\d+$/);
		assert.equal(ack.payload.protocolVersion, 1);
		bob.hello('bob');
		const bobId = (await bob.next()).payload.connectionId;

		alice.joinRoom('physics');
		assert.deepEqual((await alice.next()).payload, { status: 'joined', room: 'physics', members: 1 });
		bob.joinRoom('physics');
		assert.deepEqual((await bob.next()).payload, { status: 'joined', room: 'physics', members: 2 });
		const joined = await alice.next();
		assert.equal(joined.type, T.MESSAGE);
		assert.deepEqual(joined.payload, { type: 'userJoined', room: 'physics', connectionId: bobId, userId: 'bob' });

		bob.sendMessage('physics', 'hi alice, is the lab free tomorrow?');
		const m1 = await alice.next();
		assert.equal(m1.type, T.MESSAGE);
		assert.equal(m1.payload.room, 'physics');
		assert.equal(m1.payload.from, bobId);
		assert.equal(m1.payload.userId, 'bob');
		assert.equal(m1.payload.content, 'hi alice, is the lab free tomorrow?');
		assert.ok(Math.abs(m1.payload.timestamp - Date.now()) < 60000, 'timestamp is ms since the epoch');

		alice.sendMessage('physics', 'yes, from 9 to 12 ✓');
		assert.equal((await bob.next()).payload.content, 'yes, from 9 to 12 ✓');

		bob.heartbeat();
		const pong = await bob.next();
		assert.equal(pong.type, T.HEARTBEAT);
		assert.equal(pong.payload, null);

		bob.leaveRoom('physics');
		assert.deepEqual((await bob.next()).payload, { status: 'left', room: 'physics' });
		const left = await alice.next();
		assert.deepEqual(left.payload, { type: 'userLeft', room: 'physics', connectionId: bobId, userId: 'bob' });

		bob.disconnect();
		alice.disconnect();
		await Promise.all([once(alice.sock, 'close'), once(bob.sock, 'close')]);
	} finally {
		child.kill('SIGTERM');
	}
	const [code] = await once(child, 'exit');
	assert.equal(code, 0, 'relayd exits 0 on SIGTERM');
	console.log('ok - original-style Node.js client: connect, hello, join, chat, heartbeat, leave');
}

main().catch((err) => { console.error(`not ok - ${err.stack || err}`); process.exit(1); });
