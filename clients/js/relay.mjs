// relay.mjs -- a dependency-free client for relayd over WebSocket, for browsers
// and Node (>= 20; Node without a global WebSocket uses the `ws` package).
//
// Every WebSocket binary message carries exactly one Relay frame (docs/protocol.md,
// "WebSocket"). The client speaks JSON frames only.
//
//   import { RelayClient } from './relay.mjs';
//   const relay = new RelayClient({ url: 'ws://127.0.0.1:4001/relay', userId: 'alice' });
//   relay.on('message', (m) => console.log(m.room, m.userId ?? m.from, m.content));
//   relay.on('presence', (p) => console.log(p.type, p.room, p.userId ?? p.connectionId));
//   await relay.connect();
//   await relay.join('lobby');
//   relay.publish('lobby', { text: 'hi' });
//
// Events (relay.on(name, fn); relay.off(name, fn)):
//   state     'connecting' | 'open' | 'reconnecting' | 'closed'
//   hello     the server's HELLO ack (object), after every (re)connect
//   message   { room, from, userId?, content, timestamp, seq? }
//   presence  { type: 'userJoined' | 'userLeft', room, connectionId, userId? }
//   gap       { room, reason }  (cluster: messages may have been missed)
//   joined    the JOIN ack of a room (also after an automatic re-join on reconnect);
//             with history on it says { recovered: true | false } when resuming
//   left      a LEAVE ack, including rooms the server left for us (token refresh)
//   error     { code, message, fatal, room? } for every ERROR frame
//   rtt       heartbeat round trip in milliseconds
//   close     { code, reason, willReconnect }

const TYPE = Object.freeze({ HELLO: 1, JOIN_ROOM: 2, LEAVE_ROOM: 3, MESSAGE: 4, HEARTBEAT: 5, ERROR: 6 });
const FLAG_JSON = 0x01;
const HEADER_BYTES = 7; // u32 length | u8 version | u8 type | u8 flags
const PROTOCOL_VERSION = 1;
const SUBPROTOCOL = 'relay.v1';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Encodes one Relay frame with a JSON payload (undefined: empty payload). */
export function encodeFrame(type, payload) {
	const body = payload === undefined ? new Uint8Array(0) : encoder.encode(JSON.stringify(payload));
	const frame = new Uint8Array(HEADER_BYTES + body.length);
	const view = new DataView(frame.buffer);
	view.setUint32(0, 3 + body.length);
	frame[4] = PROTOCOL_VERSION;
	frame[5] = type;
	frame[6] = body.length ? FLAG_JSON : 0;
	frame.set(body, HEADER_BYTES);
	return frame;
}

/** Decodes the one Relay frame of a WebSocket message: { type, flags, payload }. */
export function decodeFrame(bytes) {
	if (bytes.length < HEADER_BYTES) throw new Error('short frame');
	const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
	const len = view.getUint32(0);
	if (len + 4 !== bytes.length) throw new Error('frame length does not match the message');
	const type = bytes[5];
	const flags = bytes[6];
	const raw = bytes.subarray(HEADER_BYTES);
	let payload = raw;
	if (flags & FLAG_JSON) payload = JSON.parse(decoder.decode(raw));
	else if (raw.length === 0) payload = null;
	return { type, flags, payload };
}

// The server trims ASCII whitespace from both ends of a room name and answers with
// the trimmed name (docs/protocol.md, "Names"); requests are matched to answers by it.
function roomKey(room) {
	return typeof room === 'string' ? room.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '') : room;
}

async function defaultWebSocket() {
	if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
	const mod = await import('ws');
	return mod.WebSocket ?? mod.default;
}

function toBytes(data) {
	if (data instanceof Uint8Array) return data;
	if (data instanceof ArrayBuffer) return new Uint8Array(data);
	if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
	if (Array.isArray(data)) { // ws: fragments
		const total = data.reduce((n, b) => n + b.length, 0);
		const out = new Uint8Array(total);
		let o = 0;
		for (const b of data) { out.set(b, o); o += b.length; }
		return out;
	}
	throw new Error('unexpected WebSocket message type');
}

/** A Relay error frame turned into an Error (code, fatal, room). */
export class RelayError extends Error {
	constructor(e) {
		super(e.message ?? e.code);
		this.name = 'RelayError';
		this.code = e.code;
		this.fatal = !!e.fatal;
		if (e.room !== undefined) this.room = e.room;
	}
}

export class RelayClient {
	/**
	 * @param {object} opts
	 *   url          ws:// or wss:// URL of relayd's WebSocket listener (path /relay)
	 *   userId       optional user id sent in HELLO (ignored by a server that requires tokens)
	 *   token        optional access token (string, or a function returning one / a promise of
	 *                one, called on every connect so a fresh token can be fetched)
	 *   echo         deliver this client's own messages back to it (default false)
	 *   reconnect    false, or { minDelayMs: 250, maxDelayMs: 10000 } (default on)
	 *   heartbeatMs  heartbeat interval; default: the server's heartbeatMs from the HELLO ack
	 *   timeoutMs    how long to wait for an ack (default 10000)
	 *   WebSocket    WebSocket constructor to use (default: global, else the `ws` package)
	 */
	constructor(opts) {
		if (!opts || typeof opts.url !== 'string') throw new TypeError('RelayClient: opts.url is required');
		this.opts = { echo: false, timeoutMs: 10000, reconnect: {}, ...opts };
		this.state = 'closed';
		this.connectionId = null;
		this.server = null;
		this.rooms = new Map(); // room -> { epoch?, seq? } for rooms we are (or want to be) in
		this._listeners = new Map();
		this._pending = []; // { kind, room, resolve, reject, timer }
		this._ws = null;
		this._attempt = 0;
		this._closing = false;
		this._hbTimer = null;
		this._retryTimer = null;
	}

	on(name, fn) {
		if (!this._listeners.has(name)) this._listeners.set(name, new Set());
		this._listeners.get(name).add(fn);
		return this;
	}

	off(name, fn) {
		this._listeners.get(name)?.delete(fn);
		return this;
	}

	_emit(name, arg) {
		for (const fn of this._listeners.get(name) ?? []) {
			try { fn(arg); } catch (e) { queueMicrotask(() => { throw e; }); }
		}
	}

	_setState(s) {
		if (this.state === s) return;
		this.state = s;
		this._emit('state', s);
	}

	/** Connects and says HELLO; resolves with the HELLO ack. If this first attempt fails
	 * it rejects (and does not retry); once connected, a lost connection is re-established
	 * with backoff, re-joining every room (events 'state', 'hello', 'joined'). */
	async connect() {
		this._closing = false;
		this._attempt = 0;
		return this._open('connecting');
	}

	async _open(state) {
		this._setState(state);
		const WS = this.opts.WebSocket ?? await defaultWebSocket();
		const ws = new WS(this.opts.url, SUBPROTOCOL);
		ws.binaryType = 'arraybuffer';
		this._ws = ws;
		await new Promise((resolve, reject) => {
			ws.onopen = () => resolve();
			ws.onerror = () => reject(new Error(`cannot connect to ${this.opts.url}`));
			ws.onclose = (ev) => reject(new Error(`connection closed (${ev.code})`));
		}).catch((e) => {
			this._ws = null;
			if (state === 'connecting') { // the first connect fails to its caller; no retry loop
				this._setState('closed');
			} else {
				this._connectionLost(1006, e.message);
			}
			throw e;
		});
		ws.onmessage = (ev) => this._onMessage(ev.data);
		ws.onclose = (ev) => { if (this._ws === ws) { this._ws = null; this._connectionLost(ev.code, ev.reason); } };
		ws.onerror = () => {};
		const hello = { clientVersion: 'relay.mjs/1' };
		if (this.opts.userId !== undefined) hello.userId = this.opts.userId;
		if (this.opts.echo) hello.echo = true;
		const token = typeof this.opts.token === 'function' ? await this.opts.token() : this.opts.token;
		if (token !== undefined) hello.token = token;
		const ack = await this._request('hello', null, TYPE.HELLO, hello);
		this.connectionId = ack.connectionId;
		this.server = ack;
		this._attempt = 0;
		this._setState('open');
		this._startHeartbeat(this.opts.heartbeatMs ?? ack.heartbeatMs ?? 30000);
		this._emit('hello', ack);
		await this._rejoin();
		return ack;
	}

	/** Joins <room>; resolves with the JOIN ack, rejects with a RelayError. */
	async join(room) {
		// The ack records the room's position (_onJoinAck) before any delivery that
		// follows it is handled, so no message is missed for resuming.
		return this._request('join', roomKey(room), TYPE.JOIN_ROOM, { room });
	}

	/** Leaves <room>; resolves with the LEAVE ack. */
	async leave(room) {
		this.rooms.delete(roomKey(room));
		return this._request('leave', roomKey(room), TYPE.LEAVE_ROOM, { room });
	}

	/** Publishes <content> (any JSON value) to <room>. Fire and forget: a problem arrives
	 * as an 'error' event (NOT_IN_ROOM, FORBIDDEN, ...). Returns false when not connected. */
	publish(room, content) {
		return this._send(TYPE.MESSAGE, { room, content });
	}

	/** One heartbeat round trip; resolves with the time in milliseconds. */
	async ping() {
		const t0 = Date.now();
		await this._request('heartbeat', null, TYPE.HEARTBEAT, { t: t0 });
		const rtt = Date.now() - t0;
		this._emit('rtt', rtt);
		return rtt;
	}

	/** Closes the connection for good (no reconnect). */
	close() {
		this._closing = true;
		clearTimeout(this._retryTimer);
		this._stopHeartbeat();
		const ws = this._ws;
		this._ws = null;
		if (ws) ws.close(1000, 'bye');
		this._failPending(new Error('client closed'));
		this._setState('closed');
	}

	// ---- internals ---------------------------------------------------------

	_position(ack) {
		return ack && typeof ack.epoch === 'string' ? { epoch: ack.epoch, seq: ack.seq ?? 0 } : {};
	}

	_send(type, payload) {
		const ws = this._ws;
		if (!ws || ws.readyState !== 1) return false;
		ws.send(encodeFrame(type, payload));
		return true;
	}

	_request(kind, room, type, payload) {
		return new Promise((resolve, reject) => {
			const p = { kind, room, resolve, reject };
			p.timer = setTimeout(() => {
				this._pending.splice(this._pending.indexOf(p), 1);
				reject(new Error(`${kind}: no answer within ${this.opts.timeoutMs} ms`));
			}, this.opts.timeoutMs);
			this._pending.push(p);
			if (!this._send(type, payload)) {
				clearTimeout(p.timer);
				this._pending.splice(this._pending.indexOf(p), 1);
				reject(new Error(`${kind}: not connected`));
			}
		});
	}

	// The first pending request of <kind> (for <room> when given) leaves the queue.
	_settle(kind, room, fn) {
		const i = this._pending.findIndex((p) => p.kind === kind && (room === undefined || p.room === room));
		if (i < 0) return false;
		const [p] = this._pending.splice(i, 1);
		clearTimeout(p.timer);
		fn(p);
		return true;
	}

	_failPending(err) {
		for (const p of this._pending.splice(0)) {
			clearTimeout(p.timer);
			p.reject(err);
		}
	}

	_onMessage(data) {
		let f;
		try {
			f = decodeFrame(toBytes(data));
		} catch (e) {
			this._emit('error', { code: 'CLIENT_DECODE', message: e.message, fatal: false });
			return;
		}
		const p = f.payload;
		switch (f.type) {
		case TYPE.HELLO:
			if (!this._settle('hello', undefined, (q) => q.resolve(p))) this._emit('hello', p);
			break;
		case TYPE.JOIN_ROOM:
			this._onJoinAck(p);
			break;
		case TYPE.LEAVE_ROOM: {
			const room = p?.room;
			if (!this._settle('leave', room, (q) => q.resolve(p))) this.rooms.delete(room);
			this._emit('left', p);
			break;
		}
		case TYPE.MESSAGE:
			this._onDelivery(p);
			break;
		case TYPE.HEARTBEAT:
			this._settle('heartbeat', undefined, (q) => q.resolve(p));
			if (p && typeof p.t === 'number') this._lastRtt = Date.now() - p.t;
			break;
		case TYPE.ERROR:
			this._onError(p);
			break;
		default:
			break;
		}
	}

	_onJoinAck(ack) {
		const room = ack?.room;
		if (room !== undefined) this.rooms.set(room, this._position(ack));
		this._settle('join', room, (q) => q.resolve(ack));
		this._emit('joined', ack);
	}

	_onDelivery(m) {
		if (!m || typeof m !== 'object') return;
		if (m.type === 'userJoined' || m.type === 'userLeft') {
			this._emit('presence', m);
			return;
		}
		if (m.type === 'gap') {
			this._emit('gap', m);
			return;
		}
		const pos = this.rooms.get(m.room);
		if (pos && typeof m.seq === 'number') pos.seq = m.seq;
		this._emit('message', m);
	}

	_onError(e) {
		if (!e) return;
		this._emit('error', e);
		const err = new RelayError(e);
		// Errors about a room answer that room's pending join/leave; others answer the
		// oldest pending request of the matching kind.
		if (e.room !== undefined && (this._settle('join', e.room, (q) => q.reject(err)) ||
		    this._settle('leave', e.room, (q) => q.reject(err))))
			return;
		if (e.code === 'INVALID_ROOM' || e.code === 'TOO_MANY_ROOMS' || e.code === 'FORBIDDEN') {
			if (this._settle('join', undefined, (q) => q.reject(err))) return;
		}
		if (e.code === 'INVALID_PAYLOAD' || e.code === 'UNAUTHORIZED')
			if (this._settle('hello', undefined, (q) => q.reject(err))) return;
		if (e.fatal) this._failPending(err);
	}

	async _rejoin() {
		for (const [room, pos] of [...this.rooms]) {
			const req = { room };
			if (pos.epoch !== undefined) req.since = { epoch: pos.epoch, seq: pos.seq };
			try {
				await this._request('join', room, TYPE.JOIN_ROOM, req);
			} catch (e) {
				// A lost connection keeps the room for the next attempt; a refusal drops it.
				if (!(e instanceof RelayError)) return;
				this.rooms.delete(room);
				this._emit('error', { code: e.code ?? 'REJOIN_FAILED', message: e.message, fatal: false, room });
			}
		}
	}

	_startHeartbeat(ms) {
		this._stopHeartbeat();
		if (!(ms > 0)) return;
		this._hbTimer = setInterval(() => {
			this.ping().catch(() => {});
		}, ms);
		this._hbTimer.unref?.();
	}

	_stopHeartbeat() {
		clearInterval(this._hbTimer);
		this._hbTimer = null;
	}

	_connectionLost(code, reason) {
		this._stopHeartbeat();
		this._failPending(new Error(`connection lost (${code}${reason ? ': ' + reason : ''})`));
		const rc = this.opts.reconnect;
		const again = !this._closing && rc !== false;
		this._emit('close', { code, reason, willReconnect: again });
		if (!again) {
			this._setState('closed');
			return;
		}
		this._setState('reconnecting');
		const min = rc.minDelayMs ?? 250, max = rc.maxDelayMs ?? 10000;
		const base = Math.min(max, min * 2 ** this._attempt++);
		const delay = base / 2 + Math.random() * base / 2; // jitter: [base/2, base)
		clearTimeout(this._retryTimer);
		this._retryTimer = setTimeout(() => {
			if (this._closing) return;
			this._open('reconnecting').catch(() => {}); // a failure schedules the next try
		}, delay);
	}
}

export const FrameType = TYPE;
