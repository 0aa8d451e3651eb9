// app.js -- the chat page served by relayd (--web-root). Uses the JavaScript client
// (relay.mjs, copied next to this file at build time from clients/js/).
import { RelayClient } from './relay.mjs';

const $ = (id) => document.getElementById(id);
const rooms = new Map(); // name -> { members, entries: [], unread }
let relay = null;
let me = '';
let active = null;

function wsUrl() {
	const params = new URLSearchParams(location.search);
	if (params.get('ws')) return params.get('ws');
	return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/relay`;
}

function textOf(content) {
	if (typeof content === 'string') return content;
	if (content && typeof content.text === 'string') return content.text;
	return JSON.stringify(content);
}

function time(ms) {
	return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function room(name) {
	if (!rooms.has(name)) rooms.set(name, { members: 0, entries: [], unread: 0 });
	return rooms.get(name);
}

function entry(name, e) {
	const r = room(name);
	r.entries.push(e);
	if (r.entries.length > 500) r.entries.shift();
	if (name === active) appendEntry(e);
	else if (e.kind === 'msg') r.unread++;
	renderRooms();
}

function appendEntry(e) {
	const log = $('log');
	const li = document.createElement('li');
	if (e.kind === 'msg') {
		li.className = e.mine ? 'msg mine' : 'msg';
		const who = document.createElement('span');
		who.className = 'who';
		who.textContent = e.who;
		const when = document.createElement('span');
		when.className = 'when';
		when.textContent = time(e.ts);
		who.append(when);
		const body = document.createElement('span');
		body.className = 'body';
		body.textContent = e.text;
		li.append(who, body);
	} else {
		li.className = e.bad ? 'note bad' : 'note';
		li.textContent = e.text;
	}
	log.append(li);
	log.scrollTop = log.scrollHeight;
}

function renderRooms() {
	const ul = $('rooms');
	ul.replaceChildren();
	for (const [name, r] of rooms) {
		const li = document.createElement('li');
		li.dataset.room = name;
		li.textContent = name;
		if (name === active) li.className = 'active';
		if (r.unread) {
			const u = document.createElement('span');
			u.className = 'unread';
			u.textContent = r.unread;
			li.append(u);
		}
		li.onclick = () => show(name);
		ul.append(li);
	}
	const r = active && rooms.get(active);
	$('room-name').textContent = active ?? 'no room';
	$('room-members').textContent = r ? `${r.members} member${r.members === 1 ? '' : 's'}` : '';
	$('leave').hidden = !active;
	$('text').disabled = $('send').disabled = !active || relay?.state !== 'open';
}

function show(name) {
	active = name;
	const r = rooms.get(name);
	$('log').replaceChildren();
	if (r) {
		r.unread = 0;
		r.entries.forEach(appendEntry);
	}
	renderRooms();
	$('text').focus();
}

async function join(name) {
	name = name.trim();
	if (!name) return;
	try {
		const ack = await relay.join(name);
		room(ack.room).members = ack.members;
		entry(ack.room, { kind: 'note', text: `you joined ${ack.room}` });
		show(ack.room);
	} catch (e) {
		entry(active ?? name, { kind: 'note', bad: true, text: `cannot join ${name}: ${e.message}` });
	}
}

async function leave() {
	const name = active;
	if (!name) return;
	await relay.leave(name).catch(() => {});
	rooms.delete(name);
	active = rooms.keys().next().value ?? null;
	if (active) show(active);
	else {
		$('log').replaceChildren();
		renderRooms();
	}
}

function wire() {
	relay.on('state', (s) => {
		const b = $('state');
		b.textContent = s;
		b.className = `badge ${s}`;
		renderRooms();
	});
	relay.on('hello', (ack) => { $('me-conn').textContent = `(${ack.connectionId})`; });
	relay.on('rtt', (ms) => { $('rtt').textContent = `${ms} ms`; });
	relay.on('message', (m) => {
		const mine = m.from === relay.connectionId;
		entry(m.room, { kind: 'msg', mine, who: m.userId ?? m.from, text: textOf(m.content), ts: m.timestamp });
	});
	relay.on('presence', (p) => {
		const r = room(p.room);
		r.members = Math.max(0, r.members + (p.type === 'userJoined' ? 1 : -1));
		const who = p.userId ?? p.connectionId;
		entry(p.room, { kind: 'note', text: `${who} ${p.type === 'userJoined' ? 'joined' : 'left'}` });
	});
	relay.on('joined', (ack) => { if (rooms.has(ack.room)) room(ack.room).members = ack.members; renderRooms(); });
	relay.on('gap', (g) => entry(g.room, { kind: 'note', bad: true, text: `some messages may be missing (${g.reason})` }));
	relay.on('error', (e) => {
		if (e.room === undefined && !e.fatal) return; // answered requests show their own note
		entry(e.room ?? active ?? 'lobby', { kind: 'note', bad: true, text: `${e.code}: ${e.message}` });
	});
}

$('login-form').addEventListener('submit', async (ev) => {
	ev.preventDefault();
	me = $('name').value.trim();
	const first = $('first-room').value.trim();
	if (!me) return;
	$('login-go').disabled = true;
	$('login-error').textContent = '';
	relay = new RelayClient({ url: wsUrl(), userId: me, echo: true });
	wire();
	try {
		await relay.connect();
	} catch (e) {
		$('login-error').textContent = `${e.message}`;
		$('login-go').disabled = false;
		return;
	}
	$('me-name').textContent = me;
	$('login').hidden = true;
	$('chat').hidden = false;
	await join(first);
	relay.ping().catch(() => {});
	setInterval(() => relay.ping().catch(() => {}), 5000);
});

$('join-form').addEventListener('submit', (ev) => {
	ev.preventDefault();
	join($('join-room').value);
	$('join-room').value = '';
});

$('send-form').addEventListener('submit', (ev) => {
	ev.preventDefault();
	const text = $('text').value;
	if (!text.trim() || !active) return;
	// echo:true -- our own message comes back from the server, in the room's order.
	if (!relay.publish(active, text))
		entry(active, { kind: 'note', bad: true, text: 'not connected: message not sent' });
	$('text').value = '';
});

$('leave').addEventListener('click', leave);
