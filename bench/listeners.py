"""bench/listeners.py -- relayd's TLS and WebSocket listeners for bench/compare
and bench/ab: a throwaway certificate and the listening lines.

relayd started with --tls-port 0 / --ws-port 0 prints one line per extra
listener before its main one (src/relayd/main.c):
    relayd tls listening on 127.0.0.1:PORT
    relayd ws listening on 127.0.0.1:PORT
    relayd listening on 127.0.0.1:PORT (2 workers)
"""
import atexit
import os
import re
import shutil
import subprocess
import tempfile

_cert = None
_LINE = re.compile(r"^relayd(?: (\w+))? listening on (\S+):(\d+)")


def cert():
    """(cert.pem, key.pem): a self-signed P-256 certificate for 127.0.0.1 in a
    temporary directory made once per process (removed at exit), as the
    TLS tests make theirs (test/lib/tls_client.c)."""
    global _cert
    if _cert is None:
        d = tempfile.mkdtemp(prefix="relayd-bench-tls-")
        atexit.register(shutil.rmtree, d, True)
        c, k = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", k, "-out", c], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _cert = (c, k)
    return _cert


def relayd_args():
    """relayd options for a TLS and a WebSocket listener on ephemeral ports."""
    c, k = cert()
    return ["--tls-port", "0", "--tls-cert", c, "--tls-key", k, "--ws-port", "0"]


def parse(line):
    """(kind, port) of a relayd listening line ("tcp" for the main one), or None."""
    m = _LINE.match(line)
    return (m.group(1) or "tcp", int(m.group(3))) if m else None
