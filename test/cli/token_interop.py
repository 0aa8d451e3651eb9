#!/usr/bin/python3
"""token_interop.py -- relay tokens against an independent JWT implementation
(PyJWT, Debian python3-jwt + python3-cryptography), with keys made by the
`openssl` commands docs/operations.md gives:

  - tokens from `relay-cli token` (HS256 and EdDSA) decode with PyJWT;
  - tokens from PyJWT verify with relayd's verifier (token-check);
  - PyJWT's alg "none" token and an HS256 token for an Ed25519 server are
    refused.

usage: token_interop.py RELAY_CLI TOKEN_CHECK   (exit 77 = skipped: no PyJWT)
"""
import os
import subprocess
import sys
import tempfile
import time

try:
    import jwt  # noqa: E402
    from cryptography.hazmat.primitives import serialization  # noqa: F401
except ImportError:
    print("skipped: PyJWT or python3-cryptography not installed")
    sys.exit(77)

CLI, CHECK = sys.argv[1], sys.argv[2]


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def check(keys, token, aud=None):
    args = [CHECK] + (["--aud", aud] if aud else []) + keys + ["--", token]
    return run(*args)


def main():
    with tempfile.TemporaryDirectory() as d:
        priv, pub, secret = (os.path.join(d, n) for n in ("priv.pem", "pub.pem", "secret"))
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", priv], check=True)
        subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True)
        with open(secret, "w") as f:
            subprocess.run(["openssl", "rand", "-base64", "48"], stdout=f, check=True)
        key = open(secret, "rb").read()
        assert key.endswith(b"\n")
        key = key[:-1]  # the secret is the file less one trailing newline
        pub_pem = open(pub, "rb").read()
        priv_pem = open(priv, "rb").read()

        # relay-cli -> PyJWT
        r = run(CLI, "token", "--key", secret, "--sub", "alice", "--aud", "relay.example",
                "--rooms-join", "team.*", "--rooms-publish", "team.*")
        assert r.returncode == 0, r.stderr
        c = jwt.decode(r.stdout.strip(), key, algorithms=["HS256"], audience="relay.example")
        assert c["sub"] == "alice" and c["rooms"] == {"join": ["team.*"], "publish": ["team.*"]}, c
        assert abs(c["exp"] - time.time() - 3600) < 60, c
        r = run(CLI, "token", "--key", priv, "--sub", "bob", "--kid", "k1")
        assert r.returncode == 0, r.stderr
        assert jwt.get_unverified_header(r.stdout.strip())["kid"] == "k1"
        c = jwt.decode(r.stdout.strip(), pub_pem, algorithms=["EdDSA"])
        assert c["sub"] == "bob", c

        # PyJWT -> relayd's verifier
        exp = int(time.time()) + 300
        t = jwt.encode({"sub": "carol", "exp": exp, "rooms": {"join": ["x"]}}, key,
                       algorithm="HS256")
        r = check([secret], t)
        assert r.returncode == 0 and r.stdout == f"ok sub=carol exp_ms={exp * 1000} rooms=yes\n", \
            r.stdout + r.stderr
        t = jwt.encode({"sub": "dave", "exp": exp, "aud": ["a", "relay.example"]}, priv_pem,
                       algorithm="EdDSA", headers={"kid": "pub"})
        r = check(["hs=" + secret, "pub=" + pub], t, aud="relay.example")
        assert r.returncode == 0 and r.stdout.startswith("ok sub=dave"), r.stdout + r.stderr

        # what must be refused
        t = jwt.encode({"sub": "mallory", "exp": exp}, None, algorithm="none")
        r = check([pub], t)
        assert r.returncode == 1 and "refused malformed" in r.stdout, r.stdout + r.stderr
        t = jwt.encode({"sub": "mallory", "exp": exp}, key, algorithm="HS256")
        r = check([pub], t)
        assert r.returncode == 1 and r.stdout.startswith("refused bad_alg"), r.stdout + r.stderr
        t = jwt.encode({"sub": "mallory", "exp": int(time.time()) - 60}, key, algorithm="HS256")
        r = check([secret], t)
        assert r.returncode == 1 and r.stdout.startswith("refused expired"), r.stdout + r.stderr
    print("ok: relay-cli tokens decode with PyJWT; PyJWT tokens verify with relayd's verifier")


if __name__ == "__main__":
    main()
