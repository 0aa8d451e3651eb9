#!/usr/bin/env python3
"""make-token-corpus.py -- writes the seed corpus of fuzz-token
(test/fuzz/fuzz_token.c) into test/fuzz/corpus/token/. Standard library only;
HS256 tokens are signed with the fuzz target's fixed test secret (not a real
key), so that they verify inside the fuzzer. The first byte of each seed
picks the fuzzer's path: 0 token, 1 header NUL payload (signed by the
fuzzer), 2 claims, 3 rooms claim.

usage: test/fuzz/corpus/make-token-corpus.py   (rewrites the directory)
"""
import base64
import hashlib
import hmac
import json
import os
import shutil

SECRET = b"fuzz-secret-0123456789abcdef-0123456789abcdef"
EXP = 1700000060  # the fuzzer's clock is 1700000000 s
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "token")


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def hs256(header, claims):
    h = header.encode() if isinstance(header, str) else json.dumps(header).encode()
    c = claims.encode() if isinstance(claims, str) else json.dumps(claims).encode()
    si = b64(h) + b"." + b64(c)
    return si + b"." + b64(hmac.new(SECRET, si, hashlib.sha256).digest())


ROOMS = {"join": ["lobby", "team.*", "a*b"], "publish": ["team.*"]}
GOOD = {"sub": "alice", "exp": EXP, "aud": ["x", "relay"], "nbf": 1699999990, "rooms": ROOMS}

SEEDS = {
    # 0: tokens
    "tok_good_hs": b"\x00" + hs256({"alg": "HS256", "kid": "hs"}, GOOD),
    "tok_good_nokid": b"\x00" + hs256({"alg": "HS256"}, {"sub": "bob", "exp": EXP}),
    "tok_alg_none": b"\x00" + hs256({"alg": "none", "kid": "hs"}, GOOD)[:-43],
    "tok_alg_ed_on_hs": b"\x00" + hs256({"alg": "EdDSA", "kid": "hs"}, GOOD),
    "tok_kid_ed": b"\x00" + hs256({"alg": "HS256", "kid": "ed"}, GOOD),
    "tok_crit": b"\x00" + hs256({"alg": "HS256", "kid": "hs", "crit": ["x"]}, GOOD),
    "tok_expired": b"\x00" + hs256({"alg": "HS256", "kid": "hs"}, {"sub": "a", "exp": 1}),
    "tok_escapes": b"\x00" + hs256('{"al\\u0067":"HS256","kid":"h\\u0073"}',
                                   '{"sub":"caf\\u00e9","exp":1.70000006e9}'),
    "tok_segments": b"\x00" + b"a.b.c.d",
    "tok_padding": b"\x00" + b"eyJhbGciOiJIUzI1NiJ9==.e30.AAAA",
    # 1: header NUL payload, signed by the fuzzer
    "sig_good": b"\x01" + json.dumps({"alg": "HS256", "kid": "hs"}).encode() + b"\x00"
    + json.dumps(GOOD).encode(),
    "sig_sub_long": b"\x01" + b'{"alg":"HS256"}\x00' + json.dumps({"sub": "u" * 129, "exp": EXP}).encode(),
    "sig_rooms_bad": b"\x01" + b'{"alg":"HS256"}\x00'
    + b'{"sub":"a","exp":1700000060,"rooms":{"join":[" x",1]}}',
    # 2: claims
    "claims_good": b"\x02" + json.dumps(GOOD).encode(),
    "claims_numbers": b"\x02" + b'{"sub":"a","exp":170000006000E-2,"nbf":-0.0e+1}',
    "claims_huge_exp": b"\x02" + b'{"sub":"a","exp":1e400}',
    "claims_aud_string": b"\x02" + b'{"sub":"a","exp":1700000060,"aud":"relay"}',
    "claims_dup_keys": b"\x02" + b'{"sub":1,"sub":"b","exp":"x","exp":1700000060}',
    "claims_sub_ctrl": b"\x02" + b'{"sub":"a\\u0001","exp":1700000060}',
    # 3: rooms
    "rooms_mixed": b"\x03" + json.dumps(ROOMS).encode(),
    "rooms_star": b"\x03" + b'{"join":["*"],"publish":["*","x"]}',
    "rooms_escapes": b"\x03" + b'{"join":["caf\\u00e9*","q\\"x"," te am *"],"publish":[]}',
    "rooms_many": b"\x03" + json.dumps({"join": ["r%d" % i for i in range(64)],
                                        "publish": ["p%d.*" % i for i in range(64)]}).encode(),
}

if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), OUT))
