"""chat_client.py -- what tls_chat.py and wss_chat.py share: v1's frame
types, the HELLO ack's keys, fail(), frame() and a blocking socket client.
They import it from their own directory (sys.path[0]).
"""
import json
import struct
import sys

ACK_KEYS = ["status", "connectionId", "serverVersion", "protocolVersion", "maxFrameBytes",
            "heartbeatMs"]
HELLO, JOIN, MESSAGE = 1, 2, 4
FLAG_JSON = 1


def fail(why):
    print("FAIL: " + why)
    sys.exit(1)


def frame(mtype, obj):
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">IBBB", len(payload) + 3, 1, mtype, FLAG_JSON) + payload


class Client:
    """A Relay client on a connected (TCP or TLS) socket; <name> in failures."""

    def __init__(self, name, sock):
        self.name, self.sock, self.buf = name, sock, b""
        sock.settimeout(5)

    def send(self, mtype, obj):
        self.sock.sendall(frame(mtype, obj))

    def recv(self):
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    f, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return f[1], json.loads(f[3:])
            chunk = self.sock.recv(65536)
            if not chunk:
                fail(f"{self.name}: connection closed")
            self.buf += chunk

    def expect(self, mtype):
        t, obj = self.recv()
        if t != mtype:
            fail(f"{self.name}: expected type {mtype}, got {t} {obj}")
        return obj

    def message(self):
        """The next MESSAGE that is not a presence event."""
        while True:
            obj = self.expect(MESSAGE)
            if obj.get("type") not in ("userJoined", "userLeft"):
                return obj
