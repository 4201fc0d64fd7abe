"""The SQLite key store on disk (#15 item 8): once ``destroy`` returns, no byte of the
key is in any file of the key store's directory, whatever was created and destroyed
before, with connections open in several threads."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.integrity.keystore import SQLiteKeyStore


def files_holding(root: Path, secret: bytes) -> list[str]:
    """Every file under root (binary) holding the secret or any 8 consecutive bytes of it."""
    pieces = [secret[i : i + 8] for i in range(len(secret) - 7)]
    return sorted(
        p.name
        for p in root.rglob("*")
        if p.is_file() and any(piece in p.read_bytes() for piece in pieces)
    )


def in_thread(store: SQLiteKeyStore, subject: str) -> bytes | None:
    """Read a key in another thread, which keeps its own connection open."""
    out: list[bytes | None] = []
    worker = threading.Thread(target=lambda: out.append(store.key_for(subject)))
    worker.start()
    worker.join()
    return out[0]


# Each step: create the key of subject n, or destroy it (True).
steps = st.lists(st.tuples(st.integers(0, 7), st.booleans()), min_size=1, max_size=25)


@settings(max_examples=40)
@given(steps=steps)
def test_a_destroyed_key_is_in_no_file_and_the_others_stay_readable(
    steps: list[tuple[int, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = SQLiteKeyStore(root / "keys.sqlite")
        live: dict[str, bytes] = {}
        destroyed: dict[str, bytes] = {}
        erased: set[str] = set()  # an erased subject gets no key again
        for n, destroy in steps:
            subject = f"subject-{n}"
            if subject in erased:
                continue
            if not destroy:
                live[subject] = store.get_or_create(subject)
                # Another thread's connection sees it (and stays open).
                assert in_thread(store, subject) == live[subject]
                continue
            store.destroy(subject)
            erased.add(subject)
            if subject in live:
                destroyed[subject] = live.pop(subject)
            # The erasure has returned: no file holds any destroyed key.
            for key in destroyed.values():
                assert files_holding(root, key) == []
        assert {s: store.key_for(s) for s in live} == live
        assert all(store.key_for(s) is None and store.is_erased(s) for s in erased)


def test_a_key_store_left_in_wal_mode_is_cleaned_when_opened(tmp_path: Path) -> None:
    # A key store as an earlier version left it when its process died: WAL mode, and
    # an erased key still in the WAL (overwritten in the newest page only).
    old = tmp_path / "old"
    old.mkdir()
    conn = sqlite3.connect(old / "keys.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute(
        "CREATE TABLE subject_keys (subject_id TEXT PRIMARY KEY, key BLOB, erased_at TEXT)"
    )
    bob, eve = os.urandom(32), os.urandom(32)
    conn.executemany(
        "INSERT INTO subject_keys (subject_id, key) VALUES (?, ?)", [("bob", bob), ("eve", eve)]
    )
    conn.execute("UPDATE subject_keys SET key = NULL, erased_at = 'now' WHERE subject_id = 'bob'")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for name in ("keys.sqlite", "keys.sqlite-wal"):
        shutil.copy(old / name, crashed / name)  # the files as the crash left them
    conn.close()
    assert files_holding(crashed, bob) == ["keys.sqlite-wal"]

    store = SQLiteKeyStore(crashed / "keys.sqlite")

    # Opening it switched it to a rollback journal: the WAL was checkpointed and is gone.
    assert files_holding(crashed, bob) == []
    assert not (crashed / "keys.sqlite-wal").exists()
    assert store.key_for("eve") == eve and store.is_erased("bob")
    (mode,) = sqlite3.connect(crashed / "keys.sqlite").execute("PRAGMA journal_mode").fetchone()
    assert mode == "delete"
