"""The sealed file format: round trips, random access, and every kind of tampering refused (issue 19 item 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealing import CHUNK, Keyring, SealedWriter, SealError, generate_key, open_file, seal_file
from sealing.stream import MAGIC, TAG, plain_size


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    generate_key(tmp_path / "keys")
    return Keyring(tmp_path / "keys")


def sealed(path: Path, data: bytes, keyring: Keyring, piece: int = 7000) -> bytes:
    with path.open("wb") as f:
        writer = SealedWriter(f, keyring)
        for i in range(0, len(data), piece):
            writer.write(data[i:i + piece])
        writer.finish()
    return path.read_bytes()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_round_trip_and_random_access(tmp_path: Path, keyring: Keyring, size: int) -> None:
    data = os.urandom(size)
    raw = sealed(tmp_path / "f", data, keyring)
    assert raw.startswith(MAGIC) and (size < 64 or data[:64] not in raw)
    with open_file(tmp_path / "f", keyring) as f:
        assert plain_size(f) == size and f.read() == data
        for offset in (0, size // 3, max(0, size - 10)):
            f.seek(offset)
            assert f.read(CHUNK + 100) == data[offset:offset + CHUNK + 100]


def header_length(keyring: Keyring) -> int:
    return len(MAGIC) + 1 + len(keyring.current_id) + 8


def test_a_cut_swapped_or_flipped_file_is_refused(tmp_path: Path, keyring: Keyring) -> None:
    data = os.urandom(3 * CHUNK + 10)
    raw = sealed(tmp_path / "f", data, keyring)
    h, step = header_length(keyring), CHUNK + TAG
    chunks = [raw[h + i * step:h + (i + 1) * step] for i in range(4)]
    damaged = {
        "cut at a chunk boundary": raw[:h + 2 * step],
        "cut mid-chunk": raw[:-5],
        "two chunks swapped": raw[:h] + chunks[1] + chunks[0] + chunks[2] + chunks[3],
        "a chunk dropped": raw[:h] + chunks[0] + chunks[2] + chunks[3],
        "one bit flipped": raw[:h + 100] + bytes([raw[h + 100] ^ 1]) + raw[h + 101:],
        "header changed": raw[:h - 1] + bytes([raw[h - 1] ^ 1]) + raw[h:],
    }
    for what, content in damaged.items():
        (tmp_path / "g").write_bytes(content)
        with pytest.raises(SealError):
            with open_file(tmp_path / "g", keyring) as f:
                f.read()
            pytest.fail(what)
    # a crashed writer's file (no final chunk) is read up to its last whole chunk only when asked to
    (tmp_path / "g").write_bytes(raw[:h + 2 * step + 7])
    with open_file(tmp_path / "g", keyring, tolerate_cut=True) as f:
        assert f.read() == data[:2 * CHUNK]


def test_keys_rotate_old_files_stay_readable_and_reseal(tmp_path: Path, keyring: Keyring) -> None:
    data = os.urandom(CHUNK + 3)
    sealed(tmp_path / "old", data, keyring)
    first = keyring.current_id
    second = generate_key(keyring.path)
    reader = Keyring(keyring.path)
    assert reader.current_id == second and reader.key(first)
    seal_file(tmp_path / "old", tmp_path / "new", reader)
    assert (tmp_path / "new").read_bytes()[len(MAGIC) + 1:].startswith(second.encode())
    with open_file(tmp_path / "new", reader) as f:
        assert f.read() == data
    # a key ring that was loaded before the rotation learns the new key from the file,
    # and seals new files with it
    with open_file(tmp_path / "new", keyring) as f:
        assert f.read() == data
    assert keyring.current[0] == second
    (tmp_path / "other").write_text("k1 " + "00" * 32 + "\n")
    with pytest.raises(SealError, match="no key"):
        open_file(tmp_path / "new", Keyring(tmp_path / "other"))
    with pytest.raises(SealError, match="no key file"):
        open_file(tmp_path / "new", None)


def test_a_running_key_ring_seals_with_the_new_key_after_a_rotation(tmp_path: Path, keyring: Keyring) -> None:
    before = keyring.current[0]
    rotated = generate_key(keyring.path)  # as `teleconsult keys rotate` does, beside a running server
    assert rotated != before and keyring.current[0] == rotated
    assert sealed(tmp_path / "f", b"x", keyring)[len(MAGIC) + 1:].startswith(rotated.encode())


def test_a_plain_file_is_read_as_it_is(tmp_path: Path, keyring: Keyring) -> None:
    (tmp_path / "plain").write_bytes(b"hello")
    with open_file(tmp_path / "plain", keyring) as f:
        assert plain_size(f) == 5 and f.read() == b"hello"


@pytest.mark.parametrize("text, error", [
    ("", "no key"), ("k1 abc\n", "line 1"), ("k1 " + "00" * 32 + "\nk1 " + "11" * 32 + "\n", "twice"),
])
def test_a_bad_key_file_is_refused_with_the_line(tmp_path: Path, text: str, error: str) -> None:
    (tmp_path / "keys").write_text(text)
    with pytest.raises(SealError, match=error):
        Keyring(tmp_path / "keys")
