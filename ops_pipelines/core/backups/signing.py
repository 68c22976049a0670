"""An optional HMAC over the records a backup store holds (manifests, restore markers), so that a
record planted or swapped by someone with write access to the bucket is detected.

The key comes from the environment variable OPS_PIPELINES_BACKUP_HMAC_KEY (never from the config
file, never logged). Without it, records are bound only to their own names and to the dump's
sha256: a planted pair that is self-consistent is then refused only when it disagrees with this
instance's own records (the local store). With it, every record the project writes carries
`signature`, and a record read from an untrusted store (S3) without a valid one is refused.

The signature covers the record's JSON with `signature` (and derived fields) left out, keys sorted
and compact separators: the same bytes whoever writes or reads them.
"""

import hashlib
import hmac
import json
import os

KEY_ENV = "OPS_PIPELINES_BACKUP_HMAC_KEY"
DERIVED = ("signature", "duration_seconds")


def signing_key() -> bytes | None:
    """The key, read when needed (never at import): None when the variable is unset or empty."""
    value = os.environ.get(KEY_ENV, "")
    return value.encode() if value else None


def signature(record: dict, key: bytes) -> str:
    payload = {k: v for k, v in record.items() if k not in DERIVED}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def signature_problem(record: dict, *, required: bool) -> str | None:
    """Why `record` (parsed JSON) fails the signature check, or None. `required`: a record from an
    untrusted store must carry a signature when a key is set; one from the local store may predate it."""
    key = signing_key()
    if key is None:
        return None
    found = record.get("signature")
    if not found:
        return f"carries no signature, and {KEY_ENV} is set" if required else None
    if not isinstance(found, str) or not hmac.compare_digest(found, signature(record, key)):
        return f"its signature does not match {KEY_ENV} (altered, or written with another key)"
    return None


def sign(record: dict) -> dict:
    """`record` with its signature, when a key is set."""
    key = signing_key()
    if key is None:
        return record
    return {**record, "signature": signature(record, key)}
