#!/usr/bin/python3
"""tls_chat.py TLS_PORT TCP_PORT CAFILE -- Python's ssl module against relayd.

Three clients in one room: TLS 1.3 and TLS 1.2 (both verifying the server
certificate against CAFILE, host name "localhost") and plain TCP. Each says
HELLO (the ack must be exactly v1's keys: TLS adds no "features"), joins
"tls-mix", and publishes one message; every other member must receive it
with the content unchanged. Prints "ok" and the negotiated versions; exits 1
with a reason otherwise. Run by test_tls.c (python_ssl_clients_chat_with_tcp).
"""
import socket
import ssl
import sys

sys.dont_write_bytecode = True  # nothing written into the source tree
from chat_client import ACK_KEYS, HELLO, JOIN, MESSAGE, Client, fail  # noqa: E402

ROOM = "tls-mix"


def tls_client(name, port, cafile, version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    ctx.minimum_version = ctx.maximum_version = version
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                           server_hostname="localhost")
    if sock.version() != {ssl.TLSVersion.TLSv1_3: "TLSv1.3",
                          ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]:
        fail(f"{name}: negotiated {sock.version()}")
    return Client(name, sock)


def main():
    tls_port, tcp_port, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    clients = [tls_client("tls13", tls_port, cafile, ssl.TLSVersion.TLSv1_3),
               tls_client("tls12", tls_port, cafile, ssl.TLSVersion.TLSv1_2),
               Client("tcp", socket.create_connection(("127.0.0.1", tcp_port), timeout=5))]
    for c in clients:
        c.send(HELLO, {"userId": c.name})
        ack = c.expect(HELLO)
        if list(ack) != ACK_KEYS:
            fail(f"{c.name}: HELLO ack keys {list(ack)}")
        c.send(JOIN, {"room": ROOM})
        if c.expect(JOIN).get("status") != "joined":
            fail(f"{c.name}: join refused")
    for sender in clients:
        sender.send(MESSAGE, {"room": ROOM, "content": {"from": sender.name, "text": "héllo"}})
        for c in clients:
            if c is sender:
                continue
            m = c.message()
            if m.get("content") != {"from": sender.name, "text": "héllo"} or \
                    m.get("userId") != sender.name:
                fail(f"{c.name}: got {m} for {sender.name}'s message")
    print("ok " + " ".join(c.sock.version() for c in clients[:2]))


if __name__ == "__main__":
    main()
