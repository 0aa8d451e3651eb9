#!/usr/bin/python3
"""wss_chat.py WSS_PORT TCP_PORT CAFILE -- Python's websockets (10.x, on the
ssl module) against relayd's wss:// listener.

A wss:// client (verifying the server certificate against CAFILE, host name
"localhost"; subprotocol relay.v1) and a plain TCP client join one room. The
WebSocket client's HELLO ack must be v1's exactly (wss adds no "features");
each publishes one message and the other must receive it unchanged, so the
message crosses both ways. Prints "ok" and the TLS version; exits 1 with a
reason otherwise. Run by test_wss.c.
"""
import asyncio
import json
import socket
import ssl
import struct
import sys

import websockets

sys.dont_write_bytecode = True  # nothing written into the source tree
from chat_client import ACK_KEYS, HELLO, JOIN, MESSAGE, Client, fail, frame  # noqa: E402

ROOM = "wss-mix"


def unframe(data):
    """One Relay frame (a whole WebSocket message): (type, JSON)."""
    if len(data) < 7 or struct.unpack(">I", data[:4])[0] != len(data) - 4:
        fail(f"not one Relay frame: {data[:40]!r}")
    return data[5], json.loads(data[7:])


async def ws_expect(ws, mtype):
    data = await asyncio.wait_for(ws.recv(), 5)
    if not isinstance(data, bytes):
        fail(f"wss: a text message {data!r}")
    t, obj = unframe(data)
    if t != mtype:
        fail(f"wss: expected type {mtype}, got {t} {obj}")
    return obj


async def main():
    wss_port, tcp_port, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    tcp = Client("tcp", socket.create_connection(("127.0.0.1", tcp_port), timeout=5))
    async with websockets.connect(f"wss://localhost:{wss_port}/relay", ssl=ctx,
                                  subprotocols=["relay.v1"], open_timeout=5) as ws:
        if ws.subprotocol != "relay.v1":
            fail(f"wss: subprotocol {ws.subprotocol}")
        await ws.send(frame(HELLO, {"userId": "py-wss"}))
        ack = await ws_expect(ws, HELLO)
        if list(ack) != ACK_KEYS:
            fail(f"wss: HELLO ack keys {list(ack)}")
        await ws.send(frame(JOIN, {"room": ROOM}))
        if (await ws_expect(ws, JOIN)).get("status") != "joined":
            fail("wss: join refused")
        tcp.send(HELLO, {"userId": "py-tcp"})
        tcp.expect(HELLO)
        tcp.send(JOIN, {"room": ROOM})
        tcp.expect(JOIN)
        joined = await ws_expect(ws, MESSAGE)  # presence: the TCP member came
        if joined.get("type") != "userJoined":
            fail(f"wss: expected userJoined, got {joined}")
        await ws.send(frame(MESSAGE, {"room": ROOM, "content": {"text": "héllo from wss"}}))
        m = tcp.expect(MESSAGE)
        if m.get("content") != {"text": "héllo from wss"} or m.get("userId") != "py-wss":
            fail(f"tcp: got {m}")
        tcp.send(MESSAGE, {"room": ROOM, "content": {"text": "héllo from tcp"}})
        m = await ws_expect(ws, MESSAGE)
        if m.get("content") != {"text": "héllo from tcp"} or m.get("userId") != "py-tcp":
            fail(f"wss: got {m}")
        version = ws.transport.get_extra_info("ssl_object").version()
    print("ok " + version)


if __name__ == "__main__":
    asyncio.run(main())
