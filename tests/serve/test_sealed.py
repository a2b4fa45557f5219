"""Sealed reasoning: blobs round-trip, hide the text, and any change to them is refused."""

import base64
import os
import re
import stat
import threading

import pytest

from ponder.errors import UserError
from ponder.serve.sealed import PREFIX, ReasoningSealer, TamperedBlob, load_or_create_key

SECRET = "347 * 9: 7 * 9 = 63, write 3 carry 6. The hidden chain of thought."
PAYLOAD = {"reasoning": SECRET, "model": "ponder-tiny", "tokens": 42, "note": "héllo ✓"}
AT = {"owner": "key_0123456789ab", "model": "ponder-tiny"}  # who the blob is sealed for


def raw_of(blob: str) -> bytes:
    body = blob[len(PREFIX):]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def blob_of(raw: bytes) -> str:
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def sealer():
    return ReasoningSealer(os.urandom(32))


def test_round_trip(sealer):
    blob = sealer.seal(PAYLOAD, **AT)
    assert blob.startswith(PREFIX) and "=" not in blob
    assert sealer.open(blob, **AT) == PAYLOAD
    assert sealer.open(sealer.seal({}, **AT), **AT) == {}


def test_the_reasoning_does_not_appear_in_the_blob(sealer):
    blob = sealer.seal(PAYLOAD, **AT)
    assert SECRET not in blob
    for needle in ("carry 6", "hidden", "chain of thought", "7 * 9 = 63"):  # long enough not to occur by chance
        assert needle not in blob
        assert needle.encode() not in raw_of(blob)


def test_two_seals_of_one_payload_differ(sealer):
    a, b = sealer.seal(PAYLOAD, **AT), sealer.seal(PAYLOAD, **AT)
    assert a != b and raw_of(a)[:12] != raw_of(b)[:12]  # fresh nonce each time
    assert sealer.open(a, **AT) == sealer.open(b, **AT) == PAYLOAD


def test_every_sampled_bit_flip_is_detected(sealer):
    raw = raw_of(sealer.seal(PAYLOAD, **AT))
    n_bits = len(raw) * 8
    # The nonce, the body and the tag, plus a stride through everything in between.
    positions = sorted({0, 7, 95, 96, 100, n_bits // 2, n_bits - 128, n_bits - 1, *range(0, n_bits, 37)})
    for bit in positions:
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(TamperedBlob, match="altered, truncated, or sealed for another account"):
            sealer.open(blob_of(bytes(flipped)), **AT)


def test_every_changed_character_is_detected(sealer):
    # Including the last one, whose spare base64 bits would otherwise decode to the same bytes.
    blob = sealer.seal(PAYLOAD, **AT)
    for i in (len(PREFIX), len(PREFIX) + 1, len(blob) // 2, len(blob) - 1):
        for c in "AQgw_-":
            if blob[i] != c:
                with pytest.raises(TamperedBlob):
                    sealer.open(blob[:i] + c + blob[i + 1 :], **AT)


@pytest.mark.parametrize("cut", [1, 2, 3, 16, 40])
def test_truncation_is_detected(sealer, cut):
    blob = sealer.seal(PAYLOAD, **AT)
    with pytest.raises(TamperedBlob):
        sealer.open(blob[:-cut], **AT)
    with pytest.raises(TamperedBlob):
        sealer.open(blob_of(raw_of(blob)[:-cut]), **AT)


def test_short_and_empty_blobs(sealer):
    for blob in (PREFIX, PREFIX + "AAAA", blob_of(bytes(27))):
        with pytest.raises(TamperedBlob, match="too short"):
            sealer.open(blob, **AT)


def test_a_blob_from_another_key_is_refused(sealer):
    other = ReasoningSealer(os.urandom(32)).seal(PAYLOAD, **AT)
    with pytest.raises(TamperedBlob, match="authentication failed"):
        sealer.open(other, **AT)


@pytest.mark.parametrize(
    "blob",
    ["", "ponder2:AAAA", "PONDER1:AAAA", "gAAAAABh-not-ours", PREFIX + "abc$def", PREFIX + "A===", PREFIX + "A"],
)
def test_wrong_prefix_or_bad_base64(sealer, blob):
    with pytest.raises(TamperedBlob):
        sealer.open(blob, **AT)


@pytest.mark.parametrize("blob", [None, 12, b"ponder1:AAAA", ["ponder1:"], {"blob": 1}])
def test_non_strings_are_refused(sealer, blob):
    with pytest.raises(TamperedBlob, match="expected a string"):
        sealer.open(blob, **AT)


def test_a_tampered_blob_is_a_value_error(sealer):
    assert issubclass(TamperedBlob, ValueError)


def test_non_dict_payload_inside_is_refused():
    key = os.urandom(32)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from ponder.serve.sealed import _associated

    nonce = os.urandom(12)
    blob = blob_of(nonce + AESGCM(key).encrypt(nonce, b"[1, 2]", _associated(**AT)))
    with pytest.raises(TamperedBlob, match="JSON object"):
        ReasoningSealer(key).open(blob, **AT)


def test_seal_takes_only_dicts_and_the_key_must_be_32_bytes(sealer):
    with pytest.raises(TypeError):
        sealer.seal(["not", "a", "dict"], **AT)
    for key in (b"", os.urandom(16), os.urandom(33), "x" * 32):
        with pytest.raises(ValueError):
            ReasoningSealer(key)


def test_key_file_is_private_and_reused(tmp_path):
    path = tmp_path / "data" / "reasoning.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["reasoning.key"]  # no temp files left
    blob = ReasoningSealer(key).seal(PAYLOAD, **AT)
    assert ReasoningSealer(load_or_create_key(path)).open(blob, **AT) == PAYLOAD


def test_racing_workers_all_get_the_same_key(tmp_path):
    path = tmp_path / "reasoning.key"
    keys, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        keys.append(load_or_create_key(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and path.read_bytes() == keys[0]


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_a_key_file_of_the_wrong_size_names_the_path(tmp_path, size):
    path = tmp_path / "reasoning.key"
    path.write_bytes(b"k" * size)
    with pytest.raises(UserError, match=f"{re.escape(str(path))}.*{size} bytes, expected 32"):
        load_or_create_key(path)


def test_an_unreadable_key_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=re.escape(str(tmp_path))):
        load_or_create_key(tmp_path)  # a directory, not a key file


@pytest.mark.parametrize("other", [
    {"owner": "key_ba9876543210", "model": "ponder-tiny"},  # another account
    {"owner": "-", "model": "ponder-tiny"},  # the keyless owner
    {"owner": "key_0123456789ab", "model": "ponder-other"},  # another model
    {"owner": "key_0123456789a", "model": "bponder-tiny"},  # the same characters, cut elsewhere
])
def test_a_blob_opens_only_for_its_owner_and_model(sealer, other):
    blob = sealer.seal(PAYLOAD, **AT)
    with pytest.raises(TamperedBlob, match="another account, model"):
        sealer.open(blob, **other)
    assert sealer.open(blob, **AT) == PAYLOAD
