#!/usr/bin/env python3
"""Builds the seed corpora under fuzz/seeds/ from the shared test vectors.

Inputs follow each target's `arbitrary` layout: integers little-endian from the front, the
final byte slice takes the rest.
"""
import base64, json, pathlib, struct, sys

here = pathlib.Path(__file__).resolve().parent
vectors = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "tests" / "vectors"
seeds = here / "seeds"
for target in ("signature_header", "timestamp", "verify", "streaming", "cli_input",
               "stripe_header", "standard_webhooks_header", "basic_credentials"):
    (seeds / target).mkdir(parents=True, exist_ok=True)

for path in sorted(vectors.glob("*.json")):
    for case in json.loads(path.read_text())["cases"]:
        name = case["name"]
        headers = case["headers"]
        body = base64.b64decode(case["body_base64"])
        now = struct.pack("<q", case["now_unix"])
        signature = headers.get("X-Agent-Signature", "").encode()
        timestamp = headers.get("X-Agent-Timestamp", "").encode()
        (seeds / "signature_header" / name).write_bytes(signature)
        (seeds / "timestamp" / name).write_bytes(now + struct.pack("<I", case["tolerance_s"]) + timestamp)
        head = b"".join(f"{k.lower()}:{v}\n".encode() for k, v in headers.items())
        (seeds / "verify" / name).write_bytes(now + head + b"\n" + body[:4096])
        (seeds / "streaming" / name).write_bytes(b"\x00" + body[:4096])

# The command line's inputs are not in the vectors: a few of each kind, as plain text (the
# fuzzer splits the bytes between its string arguments).
for name, text in {
    "secret_labelled": "current=whsec_abc123",
    "secret_bare": "whsec_abc123",
    "secret_padding": "prev=c2VjcmV0==",
    "store_redis": "redis://hooks:p%40ss@127.0.0.1:6379/0",
    "store_postgres": "postgres://hooks:secret@db:5432/app?password=x&sslmode=disable",
    "store_unix": "redis+unix:///run/redis.sock?pass=hunter2",
    "store_memory": "memory",
    "path": "/webhooks/agent-v1",
}.items():
    (seeds / "cli_input" / name).write_bytes(text.encode())

# The other methods' credential headers, signed with the keys the targets configure: valid and
# near-valid ones. Ed25519 needs the `cryptography` package.
import hashlib, hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

body = b'{"type":"fuzz"}'
t = b"1764000000"


def write(target, cases):
    for name, value in cases.items():
        (seeds / target / name).write_bytes(value)


v1 = hmac.new(b"whsec_fuzz", t + b"." + body, hashlib.sha256).hexdigest().encode()
other = hmac.new(b"whsec_other", t + b"." + body, hashlib.sha256).hexdigest().encode()
write("stripe_header", {
    "valid": b"t=" + t + b",v1=" + v1,
    "valid_rotation": b"t=" + t + b",v1=" + other + b",v1=" + v1,
    "valid_with_v0_and_unknown_keys": b"t=" + t + b",v1=" + v1 + b",v0=" + other + b",scheme=x",
    "valid_uppercase": b"t=" + t + b",v1=" + v1.upper(),
    "v1_first": b"v1=" + v1 + b",t=" + t,
    "missing_t": b"v1=" + v1,
    "repeated_t": b"t=" + t + b",t=" + t + b",v1=" + v1,
    "other_t": b"t=1764000001,v1=" + v1,
    "only_v0": b"t=" + t + b",v0=" + v1,
    "wrong_v1": b"t=" + t + b",v1=" + other,
    "short_v1": b"t=" + t + b",v1=" + v1[:-1],
})

message = b"msg_fuzz." + t + b"." + body
sw_v1 = b"v1," + base64.b64encode(hmac.new(b"fuzz-hmac-key-01", message, hashlib.sha256).digest())
sw_other = b"v1," + base64.b64encode(hmac.new(b"other", message, hashlib.sha256).digest())
sw_v1a = b"v1a," + base64.b64encode(Ed25519PrivateKey.from_private_bytes(bytes([42] * 32)).sign(message))
write("standard_webhooks_header", {
    "v1": sw_v1,
    "v1a": sw_v1a,
    "v1a_and_v1": sw_v1a + b" " + sw_v1,
    "unknown_version_beside_v1": b"v2," + sw_v1[3:] + b" " + sw_v1,
    "only_unknown_version": b"v2," + sw_v1[3:],
    "wrong_v1_then_v1a": sw_other + b" " + sw_v1a,
    "v1_not_base64": b"v1,!!!" + sw_v1[6:],
    "v1a_truncated": sw_v1a[:-4],
    "v1_as_v1a": b"v1a," + sw_v1[3:],
    "no_comma": b"v1" + sw_v1[3:],
})

token = b"tok_fuzz-0123"
pair = base64.b64encode(b"hooks:fuzz:pass")
write("basic_credentials", {
    "bearer": b"Bearer " + token,
    "bearer_lowercase": b"bearer " + token,
    "bearer_spaces": b"Bearer   " + token + b"  ",
    "bearer_empty": b"Bearer ",
    "bearer_wrong_token": b"Bearer " + token[:-1],
    "basic": b"Basic " + pair,
    "basic_lowercase": b"basic " + pair,
    "basic_without_colon": b"Basic " + base64.b64encode(b"hooksfuzzpass"),
    "basic_not_base64": b"Basic " + pair[:-2] + b"!!",
    "basic_wrong_password": b"Basic " + base64.b64encode(b"hooks:fuzz:pas"),
    "other_scheme": b"Token " + token,
})
