"""relayd_proc.py -- starts a relayd for the Python tests that need one with
a WebSocket listener (test/browser/chat_page.py, test/cli/test_cli_ws.py).

They put this directory on sys.path themselves (no meson plumbing). Env:
RELAYD_BIN, optional RELAY_TEST_GUARD (relayd then dies with the test).
"""
import os
import re
import select
import subprocess
import time


def start_relayd(extra=(), kind='ws'):
    """Starts relayd --port 0 --ws-port 0 --workers 2 <extra>; returns
    (process, tcp_port, ws_port), ws_port from its "relayd <kind> listening
    on" line (kind 'wss' with --ws-tls)."""
    args = [os.environ['RELAYD_BIN'], '--port', '0', '--ws-port', '0', '--workers', '2',
            *extra]
    guard = os.environ.get('RELAY_TEST_GUARD')
    if guard:
        args = [guard, str(os.getpid())] + args
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    tcp = ws = None
    pending = b''
    deadline = time.monotonic() + 10
    while (tcp is None or ws is None) and time.monotonic() < deadline:
        # Raw reads under a deadline: a relayd that stays up without
        # printing must not hold the test until meson's timeout.
        if not select.select([proc.stdout], [], [], deadline - time.monotonic())[0]:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b'\n')
        for line in (x.decode(errors='replace') for x in lines):
            m = re.search(rf'relayd {kind} listening on \S+:(\d+)', line)
            ws = int(m.group(1)) if m else ws
            m = re.search(r'relayd listening on \S+:(\d+) \(', line)
            tcp = int(m.group(1)) if m else tcp
    if tcp is None or ws is None:
        proc.kill()
        raise RuntimeError('relayd did not report its listeners')
    return proc, tcp, ws
