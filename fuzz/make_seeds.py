#!/usr/bin/env python3
"""Builds the seed corpora under fuzz/seeds/ from the shared test vectors.

Inputs follow each target's `arbitrary` layout: integers little-endian from the front, the
final byte slice takes the rest.
"""
import base64, json, pathlib, struct, sys

here = pathlib.Path(__file__).resolve().parent
vectors = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "tests" / "vectors"
seeds = here / "seeds"
for target in ("signature_header", "timestamp", "verify", "streaming", "cli_input"):
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
