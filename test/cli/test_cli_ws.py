#!/usr/bin/python3
"""test_cli_ws.py -- relay-cli --ws URL against a real relayd (suite 'cli').

Usage: test_cli_ws.py   (env RELAYD_BIN, RELAY_CLI_BIN; optional RELAY_TEST_GUARD)
Starts relayd with --port 0 --ws-port 0. A message published over WebSocket
reaches a TCP subscriber, one published over TCP reaches a WebSocket
subscriber (relay-cli sub --ws), and a wrong path is refused with exit 1.
Then the same over wss:// (a second relayd with --ws-tls and a certificate
made with the openssl command): --tls-ca FILE verifies it, --tls-insecure
skips that, an unknown CA is refused, and --ws ws:// with --tls is refused.
Exit status is the verdict.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib',
                                'python'))
sys.dont_write_bytecode = True  # nothing written into the source tree
from relayd_proc import start_relayd  # noqa: E402

CLI = os.environ['RELAY_CLI_BIN']


def sub(conn, room):
    """Starts `relay-cli sub ROOM --count 1 --json`; returns once it has joined."""
    p = subprocess.Popen([CLI] + conn + ['--json', 'sub', room, '--count', '1', '--timeout', '10'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()  # "relay-cli: subscribed to ROOM as conn-N"
    assert 'subscribed to' in line, f'sub did not join: {line!r}'
    return p


def pub(conn, room, text, user):
    return subprocess.run([CLI] + conn + ['--user', user, 'pub', room, text],
                          capture_output=True, text=True, timeout=10)


def check_delivery(sub_conn, pub_conn, room, text, user):
    s = sub(sub_conn, room)
    r = pub(pub_conn, room, text, user)
    assert r.returncode == 0, f'pub failed ({r.returncode}): {r.stderr}'
    out, err = s.communicate(timeout=15)
    assert s.returncode == 0, f'sub failed ({s.returncode}): {err}'
    m = json.loads(out.strip().splitlines()[-1])
    assert m['content'] == text and m['userId'] == user, f'sub got {out!r}'
    print(f'ok - {text}')


def main():
    proc, tcp, ws = start_relayd()
    tcp_conn = ['--port', str(tcp)]
    try:
        check_delivery(tcp_conn, ['--ws', f'ws://127.0.0.1:{ws}/relay'], 'r1',
                       'published over WebSocket', 'wsuser')
        check_delivery(['--ws', f'ws://127.0.0.1:{ws}'], tcp_conn, 'r2',
                       'received over WebSocket', 'tcpuser')
        r = pub(['--ws', f'ws://127.0.0.1:{ws}/nope'], 'r3', 'x', 'u')
        assert r.returncode == 1 and 'refused' in r.stderr, f'wrong path: {r.returncode} {r.stderr!r}'
        print('ok - a wrong path is refused')
    finally:
        proc.kill()
        proc.wait()
    with tempfile.TemporaryDirectory() as d:
        return check_wss(d)


def check_wss(d):
    cert, key = os.path.join(d, 'cert.pem'), os.path.join(d, 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
                    '-keyout', key, '-out', cert], check=True, capture_output=True)
    proc, tcp, wss = start_relayd(['--ws-tls', '--tls-cert', cert, '--tls-key', key], 'wss')
    tcp_conn = ['--port', str(tcp)]
    try:
        check_delivery(tcp_conn, ['--ws', f'wss://localhost:{wss}/relay', '--tls-ca', cert],
                       'r4', 'published over wss', 'wssuser')
        check_delivery(['--tls-insecure', '--ws', f'wss://127.0.0.1:{wss}'], tcp_conn, 'r5',
                       'received over wss', 'tcpuser')
        r = pub(['--ws', f'wss://localhost:{wss}'], 'r6', 'x', 'u')
        assert r.returncode == 1 and 'certificate verify failed' in r.stderr, \
            f'unknown CA: {r.returncode} {r.stderr!r}'
        print('ok - a certificate from an unknown CA is refused')
        r = pub(['--ws', f'ws://127.0.0.1:{wss}', '--tls'], 'r7', 'x', 'u')
        assert r.returncode == 1 and 'give a wss:// URL' in r.stderr, f'ws:// + --tls: {r.returncode} {r.stderr!r}'
        print('ok - --ws ws:// with --tls is refused')
        return 0
    finally:
        proc.kill()
        proc.wait()


if __name__ == '__main__':
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f'FAIL: {e}')
        sys.exit(1)
