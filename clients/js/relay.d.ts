// relay.d.ts -- TypeScript declarations for relay.mjs.

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface HelloAck {
	status: 'connected';
	connectionId: string;
	serverVersion: string;
	protocolVersion: number;
	maxFrameBytes: number;
	heartbeatMs: number;
	userId?: string;
	expiresAt?: number;
	features?: string[];
	[key: string]: unknown;
}

export interface JoinAck {
	status: 'joined';
	room: string;
	members: number;
	epoch?: string;
	seq?: number;
	recovered?: boolean;
}

export interface LeaveAck {
	status: 'left';
	room: string;
}

export interface Message<T = unknown> {
	room: string;
	from: string;
	userId?: string;
	content: T;
	timestamp: number;
	seq?: number;
}

export interface Presence {
	type: 'userJoined' | 'userLeft';
	room: string;
	connectionId: string;
	userId?: string;
}

export interface Gap {
	type: 'gap';
	room: string;
	reason: string;
}

export interface ErrorInfo {
	code: string;
	message: string;
	fatal: boolean;
	room?: string;
}

export interface CloseInfo {
	code: number;
	reason: string;
	willReconnect: boolean;
}

export interface RelayClientOptions {
	url: string;
	userId?: string;
	token?: string | (() => string | Promise<string>);
	echo?: boolean;
	reconnect?: false | { minDelayMs?: number; maxDelayMs?: number };
	heartbeatMs?: number;
	timeoutMs?: number;
	WebSocket?: unknown;
}

export interface RelayEvents {
	state: ConnectionState;
	hello: HelloAck;
	message: Message;
	presence: Presence;
	gap: Gap;
	joined: JoinAck;
	left: LeaveAck;
	error: ErrorInfo;
	rtt: number;
	close: CloseInfo;
}

export class RelayError extends Error {
	code: string;
	fatal: boolean;
	room?: string;
}

export class RelayClient {
	constructor(opts: RelayClientOptions);
	readonly state: ConnectionState;
	readonly connectionId: string | null;
	readonly server: HelloAck | null;
	readonly rooms: Map<string, { epoch?: string; seq?: number }>;
	on<K extends keyof RelayEvents>(name: K, fn: (arg: RelayEvents[K]) => void): this;
	off<K extends keyof RelayEvents>(name: K, fn: (arg: RelayEvents[K]) => void): this;
	connect(): Promise<HelloAck>;
	join(room: string): Promise<JoinAck>;
	leave(room: string): Promise<LeaveAck>;
	publish(room: string, content: unknown): boolean;
	ping(): Promise<number>;
	close(): void;
}

export const FrameType: Readonly<{
	HELLO: 1; JOIN_ROOM: 2; LEAVE_ROOM: 3; MESSAGE: 4; HEARTBEAT: 5; ERROR: 6;
}>;
export function encodeFrame(type: number, payload?: unknown): Uint8Array;
export function decodeFrame(bytes: Uint8Array): { type: number; flags: number; payload: unknown };
