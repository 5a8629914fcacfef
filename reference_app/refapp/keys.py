"""API keys: minted here, stored hashed in PostgreSQL (table api_keys), resolved per request
by refapp.auth.

A key is `rk_` followed by `secrets.token_urlsafe(32)` (256 random bits). Only its SHA-256
is stored. A plain, unsalted hash is the standard choice for high-entropy tokens: salts and
slow hashes (bcrypt, argon2) protect guessable passwords from dictionary attacks, and a
256-bit random key cannot be guessed, so a fast hash loses nothing, lets the lookup be one
indexed equality, and keeps the per-request cost to microseconds.

Admin entry point (run with the app's environment, DATABASE_URL and friends)::

    python -m refapp.keys create --user 42 --tier premium [--count N] --out keys.json

writes a JSON list of {key, user, tier} to a new file (mode 0600, never over an existing
file or through a symlink), or prints it once with `--out -`. The keys cannot be shown
again. `python -m refapp.keys revoke --prefix rk_AbCd1234` revokes keys; running workers
stop accepting them within API_KEY_CACHE_TTL seconds (refapp.auth)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from refapp.migration import migrate
from refapp.settings import Settings

TIERS = ("premium", "basic", "free")
KEY_PREFIX = "rk_"
# Stored beside the hash so an operator can name a key (list, revoke) without holding it.
SHOWN_PREFIX_LEN = len(KEY_PREFIX) + 8
MAX_KEY_LEN = 128  # longer header values are refused before hashing
MAX_COUNT = 10_000


@dataclass(frozen=True)
class MintedKey:
    key: str
    user: int
    tier: str

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "user": self.user, "tier": self.tier}


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> bytes:
    """SHA-256 of the key (see the module doc for why no salt or slow hash)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """The app's schema: minting may run before any app started."""
    migrate(conn)


def create(database_url: str, user: int, tiers: Sequence[str], count: int) -> list[MintedKey]:
    """`count` new keys for `user` in each of `tiers`, committed together."""
    minted = [MintedKey(new_key(), user, tier) for tier in tiers for _ in range(count)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_schema(conn)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO api_keys (key_hash, prefix, user_id, tier) VALUES (%s, %s, %s, %s)",
                [(key_hash(m.key), m.key[:SHOWN_PREFIX_LEN], m.user, m.tier) for m in minted],
            )
    return minted


def revoke(database_url: str, prefix: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cur = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE prefix = %s AND revoked_at IS NULL",
            (prefix,),
        )
        return cur.rowcount


def write_secret(path: str, data: bytes) -> None:
    """A new file, 0600 from the start; never an existing file or a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m refapp.keys", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("create", help="mint keys for a user (shown once)")
    make.add_argument("--user", type=int, required=True, help="the owner's user id (> 0)")
    make.add_argument(
        "--tier", choices=TIERS, action="append", required=True, help="repeat for several tiers"
    )
    make.add_argument("--count", type=int, default=1, help="keys per tier (default 1)")
    make.add_argument("--out", required=True, help="new JSON file (0600), or - for stdout")
    gone = sub.add_parser("revoke", help="revoke keys by their shown prefix")
    gone.add_argument("--prefix", required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    database_url = Settings().database_url
    if not database_url:
        print("refapp.keys: DATABASE_URL is not set", file=sys.stderr)  # noqa: T201
        return 2
    if args.command == "revoke":
        print(f"revoked {revoke(database_url, args.prefix)} key(s)")  # noqa: T201
        return 0
    if not 0 < args.user < 2**63:
        print("refapp.keys: --user must be a positive 64-bit integer", file=sys.stderr)  # noqa: T201
        return 2
    if not 1 <= args.count <= MAX_COUNT:
        print(f"refapp.keys: --count must be 1..{MAX_COUNT}", file=sys.stderr)  # noqa: T201
        return 2
    if args.out != "-" and os.path.lexists(args.out):
        print(f"refapp.keys: {args.out} exists; keys are written once", file=sys.stderr)  # noqa: T201
        return 2
    minted = create(database_url, args.user, list(dict.fromkeys(args.tier)), args.count)
    payload = json.dumps([m.as_json() for m in minted], indent=1).encode() + b"\n"
    if args.out == "-":
        sys.stdout.buffer.write(payload)
    else:
        write_secret(args.out, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
