#!/usr/bin/env python3
"""make-corpus.py -- writes the seed corpora of the WebSocket fuzzers
(test/fuzz/fuzz_http.c, test/fuzz/fuzz_wsframe.c): http/ and frames/ next to
this script. One file per case, named after what it holds. The files are
committed; this script documents where they came from.

Every file starts with one byte the fuzzer reads as its settings:
  http/    byte & 3 picks the origin allow-list (0: none,
           1: https://chat.example.com, 2: http://127.0.0.1:8080 and
           https://a.example, 3: http://[::1]:80)
  frames/  bit 0: 0 server side (masked client frames), 1 client side;
           bits 1-3 pick the message limit from
           0, 1, 4, 7, 64, 125, 1000, 2^63-1
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

BASE = (b"Host: relay.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n")

HTTP = {
    "upgrade": (0, b"GET /relay HTTP/1.1\r\n" + BASE + b"\r\n"),
    "browser": (1, b"GET /relay?x=1 HTTP/1.1\r\nHost: chat.example.com\r\n"
                b"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
                b"Origin: https://chat.example.com\r\nSec-WebSocket-Version: 13\r\n"
                b"Cookie: a=b; c=d\r\n"
                b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAw==\r\n"
                b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
                b"Sec-WebSocket-Protocol: chat, relay.v1\r\n\r\n"),
    "origin_refused": (2, b"GET /relay HTTP/1.1\r\n" + BASE +
                       b"Origin: https://evil.example\r\n\r\n"),
    "protocol_others": (0, b"GET /relay HTTP/1.1\r\n" + BASE +
                        b"Sec-WebSocket-Protocol: chat\r\n\r\n"),
    "version_8": (0, b"GET /relay HTTP/1.1\r\n" + BASE.replace(b": 13", b": 8") + b"\r\n"),
    "post": (0, b"POST /relay HTTP/1.1\r\n" + BASE + b"\r\n"),
    "other_path": (3, b"GET /index.html HTTP/1.1\r\nHost: [::1]\r\n\r\n"),
    "http10": (0, b"GET /relay HTTP/1.0\r\n" + BASE + b"\r\n"),
    "bare_lf": (0, b"GET /relay HTTP/1.1\n" + BASE + b"\r\n"),
    "folding": (0, b"GET /relay HTTP/1.1\r\n" + BASE + b"X: a\r\n b\r\n\r\n"),
    "body": (0, b"GET /relay HTTP/1.1\r\n" + BASE + b"Content-Length: 3\r\n\r\nabc"),
    "frames_after": (0, b"GET /relay HTTP/1.1\r\n" + BASE + b"\r\n\x82\x80abcd"),
    "incomplete": (0, b"GET /relay HTTP/1.1\r\n" + BASE),
    # the server's answer, for the client side (rl_http_parse_answer)
    "answer_101": (0, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                      b"\r\nSec-WebSocket-Protocol: relay.v1\r\n\r\n\x82\x00"),
    "answer_403": (0, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
}

KEY = b"\x37\xfa\x21\x3d"


def mask(payload, key=KEY):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(op, payload, fin=True, key=KEY, rsv=0):
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    m = 0x80 if key else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n < 65536:
        h = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, m | 127]) + struct.pack(">Q", n)
    return h + (key + mask(payload, key) if key else payload)


def relay(ftype, flags, payload):
    return struct.pack(">IBBB", 3 + len(payload), 1, ftype, flags) + payload


JOIN = relay(2, 1, b'{"room":"physics"}')
SERVER_1M = 7 << 1  # server side, limit 2^63-1
SERVER_64 = 4 << 1  # server side, limit 64

FRAMES = {
    "rfc_masked_hello": (SERVER_1M, frame(2, b"Hello")),
    "relay_join": (SERVER_1M, frame(2, JOIN)),
    "fragments_and_ping": (SERVER_1M, frame(2, JOIN[:5], fin=False) + frame(9, b"p") +
                           frame(0, JOIN[5:9], fin=False) + frame(10, b"") +
                           frame(0, JOIN[9:])),
    "close_normal": (SERVER_1M, frame(8, b"\x03\xe8bye")),
    "close_bad_code": (SERVER_1M, frame(8, b"\x03\xed")),
    "close_bad_utf8": (SERVER_1M, frame(8, b"\x03\xe8\xc0\xaf")),
    "text": (SERVER_1M, frame(1, b"hi")),
    "unmasked": (SERVER_1M, frame(2, b"hi", key=None)),
    "rsv1": (SERVER_1M, frame(2, b"hi", rsv=0x40)),
    "ping_126": (SERVER_1M, frame(9, b"x" * 126)),
    "len16": (SERVER_1M, frame(2, relay(5, 2, b"y" * 300))),
    "len64": (SERVER_64, bytes([0x82, 0xFF]) + struct.pack(">Q", 70000) + KEY),
    "too_big": (SERVER_64, frame(2, relay(4, 2, b"z" * 80))),
    "relay_short": (SERVER_1M, frame(2, b"\x00\x00\x00")),
    "relay_size_mismatch": (SERVER_1M, frame(2, JOIN + b"\x00")),
    "client_side": (1 | SERVER_1M, frame(2, JOIN, key=None) + frame(9, b"", key=None) +
                    frame(8, b"\x03\xe9", key=None)),
    "client_side_masked": (1 | SERVER_1M, frame(2, JOIN)),
}


def write(dirname, cases):
    d = os.path.join(HERE, dirname)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, (setting, data) in cases.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(bytes([setting]) + data)


write("http", {k: (ord("0") + s, v) for k, (s, v) in HTTP.items()})
write("frames", FRAMES)
