"""Sealed reasoning: the hidden chain of thought handed to the client as an opaque blob.

`include: ["reasoning.encrypted_content"]` lets a client keep a conversation going without the
server storing anything: the server seals the hidden reasoning with AES-256-GCM under a key only
it holds, the client sends the blob back in its next request, and the server opens it. GCM both
hides the text and authenticates it, so a blob that was altered, cut short or sealed under
another server's key is refused instead of feeding the model forged "reasoning".

Each blob is also bound to its owner (the API key's account) and the model that wrote it, as
GCM's associated data: a blob one account received does not open in another account's request
(a leaked blob is no way to read, or replay, someone else's reasoning), nor under another model
(whose prompt format the reasoning was never written for).

Left out: key rotation (one key per server data dir; a new key invalidates old blobs, which the
client sees as a clear error) and what goes inside the payload (the caller decides).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ponder.errors import UserError

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per seal, so 2**32 seals per key stay safe
TAG_BYTES = 16
PREFIX = "ponder1:"
# Binds every blob to this purpose and format version: a ciphertext made by the same key for
# anything else (a later format, another feature) will not open as reasoning. v2 added the
# owner and the model, so a v1 blob (bound to neither) no longer opens.
ASSOCIATED_DATA = b"ponder-reasoning-v2"
NO_OWNER = "-"  # the owner of blobs sealed by a server running without keys
_URLSAFE = re.compile(r"[A-Za-z0-9_-]*")


class TamperedBlob(ValueError):
    """The client sent back an encrypted_content blob this server cannot vouch for."""

    def __init__(self, why: str):
        super().__init__(
            "reasoning.encrypted_content was altered, truncated, or sealed for another account, model "
            f"or server key ({why}); send back the blob exactly as this server returned it to you"
        )


def load_or_create_key(path: Path) -> bytes:
    """The server's sealing key at `path`, made on first use (32 random bytes, mode 0600)."""
    path = Path(path)
    if not path.exists():
        _create_key(path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the reasoning key file {path}: {exc.strerror}") from None
    if len(key) != KEY_BYTES:
        raise UserError(
            f"reasoning key file {path} holds {len(key)} bytes, expected {KEY_BYTES}; "
            "delete it to make a new key (blobs sealed under the old one will stop opening)"
        )
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # 0600 from the first byte: a chmod after writing would leave a window where others can read.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
            f.flush()
            os.fsync(f.fileno())
        # A hard link publishes the whole file atomically and, unlike os.replace, never
        # clobbers: when several workers start at once, the first key wins and the rest read it
        # (a clobbered key would make blobs sealed by one worker fail in another).
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: still atomic, last writer wins
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ReasoningSealer:
    """Seals JSON payloads into `ponder1:` blobs and opens them again, under one AES-256 key."""

    def __init__(self, key: bytes):
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise ValueError(f"ReasoningSealer needs a {KEY_BYTES}-byte key")
        self._aead = AESGCM(key)

    def seal(self, payload: dict, *, owner: str, model: str) -> str:
        """`payload` sealed so that only `open(..., owner=owner, model=model)` opens it."""
        if not isinstance(payload, dict):
            raise TypeError(f"seal takes a dict, got {type(payload).__name__}")
        plain = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plain, _associated(owner, model))
        return PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, blob: str, *, owner: str, model: str) -> dict:
        raw = _decode(blob)
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise TamperedBlob("too short")
        nonce, ciphertext = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, ciphertext, _associated(owner, model))
        except InvalidTag:
            raise TamperedBlob("authentication failed") from None
        try:
            payload = json.loads(plain)
        except ValueError:  # only reachable if this key sealed non-JSON, but never trust it
            raise TamperedBlob("not JSON inside") from None
        if not isinstance(payload, dict):
            raise TamperedBlob("not a JSON object inside")
        return payload


def _associated(owner: str, model: str) -> bytes:
    # JSON, not a joined string: no owner/model pair can be spelt to look like another.
    return ASSOCIATED_DATA + json.dumps([owner, model], ensure_ascii=True).encode("ascii")


def _decode(blob: object) -> bytes:
    if not isinstance(blob, str):
        raise TamperedBlob(f"expected a string, got {type(blob).__name__}")
    if not blob.startswith(PREFIX):
        raise TamperedBlob(f"does not start with {PREFIX!r}")
    body = blob[len(PREFIX):]
    if not _URLSAFE.fullmatch(body):
        raise TamperedBlob("characters outside urlsafe base64")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:  # binascii.Error, e.g. a length no base64 can have
        raise TamperedBlob("bad base64") from None
    # The last base64 character can carry unused bits; demanding the canonical spelling means
    # every change to the string is refused, not just the changes that reach the ciphertext.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
        raise TamperedBlob("non-canonical base64")
    return raw
