#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
"""Writes the hand-made seed inputs of the fuzz targets under test/fuzz/corpus/<target>/.

Valid and near-valid inputs, a few dozen per target at most. The cipher and serializer seeds
that need real encodings come from make_corpus.cpp (fuzz_make_corpus) instead.
Usage: python3 test/fuzz/make_seeds.py (from anywhere; rewrites the *.seed files it owns).
"""
import base64
import hashlib
import hmac
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


ID = b64u(bytes(range(32)))          # 43 characters, canonical
TAGGED = ID + ".a_Z"
CSRF_SECRET = b"0123456789abcdef0123456789abcdef"   # csrf.cpp's session secret


def csrf_token(salt: bytes) -> str:
    mac = hmac.new(CSRF_SECRET, b"websession-csrf-v1" + salt, hashlib.sha256).digest()
    return b64u(salt + mac)


seeds = {
    "cookie": [
        "__Host-session=" + TAGGED,
        "a=1; b=2; __Host-session=" + ID,
        'theme="dark"; lang=en',
        "a=1;;b=2; ; c=",
        "flag; =novalue; a = 1; b=x y",
        'q="unterminated; r=x"',
        "bad\x01name=1; __Host-session=" + ID + "; __Host-session=second",
        "name\n__Host-session=1; name=found",
        "\n",
        "k=v\tw; tab=\t1\t",
        "__Secure-id=abc; __HOST-x=y",
        "a=" + "x" * 300,
    ],
    "id": [
        ID, TAGGED, ID + ".", ID[:-1] + "B", ID[:-1], ID + "=", ID + ".ab", ID + ".a+Z",
        ID.replace("A", "/", 1), "", "AA", "AAA", "AAAA", "A", "AB", "_-_-",
        "p:" + ID, "p:{abc}" + ID, "p:{ab}" + ID,
    ],
    "csrf": [
        csrf_token(bytes(16)), csrf_token(b"fixed salt 16 b!"), csrf_token(bytes(16))[:-1],
        csrf_token(bytes(16)) + "A", "A" * 64, "=" * 64, "",
    ],
    "url": [
        "redis://localhost", "redis://127.0.0.1:6380/2", "rediss://user:p%40ss@host:6390/15",
        "redis://:secret@host", "redis://[::1]:6380", "redis://[fe80::1%25eth0]:7000/1",
        "REDIS://HOST", "redis-cluster://a:7000,b:7001,[::1]:7002",
        "rediss-cluster://u:p@a:7000,b", "redis-sentinel://s1:26379,s2:26380/3#mymaster",
        "rediss-sentinel://:pw@[::1]#m%23aster", "redis-sentinel://s1",
        "redis://host:0", "redis://host:65536", "redis://host/abc", "redis://host?x=1",
        "redis://a,b", "redis-cluster://a/1", "unix:///tmp/redis.sock", "redis://[::1",
        "redis://user:pa@ss@host:1", "redis://%zz@host", "redis://host#frag", "http://host",
    ],
    "resp": [
        "+OK\r\n", "-ERR unknown command\r\n", ":12345\r\n", ":-1\r\n", "$5\r\nhello\r\n",
        "$0\r\n\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n:7\r\n",
        "*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n$-1\r\n",
        "+OK\r\n+QUEUED\r\n*2\r\n+OK\r\n:1\r\n",
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        "$5\r\nhelloXX", "$3\r\nhello\r\n", "%2\r\n+a\r\n:1\r\n", "_\r\n", "?\r\n",
        "*99999999999999999999999\r\n", "$100000000\r\n", ":" + "1" * 80 + "\r\n",
        "+" + "x" * 100 + "\r\n", "*9\r\n" + ":1\r\n" * 9, "$70\r\n" + "v" * 70 + "\r\n",
    ],
    "beast": [
        # byte 0: flags (bit 0 bind_client, bits 1-3 action, bit 4 expire); then header lines.
        "\x00",
        "\x00Cookie: __Host-session=$ID",
        "\x02Cookie: __Host-session=$ID",
        "\x04Cookie: a=1; __Host-session=$ID\nUser-Agent: fuzz/1",
        "\x05Cookie: __Host-session=$ID\nUser-Agent: fuzz/1",
        "\x06Cookie: __Host-session=$ID",
        "\x08Cookie: __Host-session=$ID",
        "\x0aCookie: __Host-session=$ID",
        "\x10Cookie: __Host-session=$ID",
        "\x02Cookie: __Host-session=$NEW",
        "\x00Cookie: __Host-session=garbage\nCookie: __Host-session=$ID",
        "\x00Cookie: __Host-session=$NEW; __Host-session=$ID",
        "\x02Cookie: __Host-session=\"$ID\"",
        "\x00cookie: __host-session=$ID\nCOOKIE: __Host-session=$ID",
        "\x01User-Agent: a\nUser-Agent: b\nCookie: __Host-session=$ID",
        "\x06X-Other: 1\nAccept-Language: en\n__Host-session=$ID",
    ],
}

for target, inputs in seeds.items():
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if name.startswith("seed-"):
            os.remove(os.path.join(d, name))
    for i, text in enumerate(inputs):
        with open(os.path.join(d, "seed-%02d" % i), "wb") as f:
            f.write(text.encode("latin-1"))
print("wrote", sum(len(v) for v in seeds.values()), "seeds")
