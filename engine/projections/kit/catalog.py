"""Which file holds each view: ``<data_dir>/views/CURRENT.json`` names the current
generation of every view (``queue.3.sqlite``, ...).

A rebuild writes a new generation next to the current one and switches by replacing
``CURRENT.json`` atomically (write, fsync, rename). Files no generation points to are
leftovers of an interrupted rebuild and are swept when no rebuild runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path


class RebuildRunningError(RuntimeError):
    """Another rebuild of these views is running (in this or another process)."""


class Catalog:
    POINTER = "CURRENT.json"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, file: str) -> Path:
        return self.directory / file

    def current(self) -> dict[str, str]:
        try:
            data = json.loads((self.directory / self.POINTER).read_text("utf-8"))
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def stamp(self) -> tuple[int, int] | None:
        """Changes whenever the pointer is replaced (cheap: one stat)."""
        try:
            st = os.stat(self.directory / self.POINTER)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def new_file(self, view: str) -> str:
        pattern = re.compile(rf"^{re.escape(view)}\.(\d+)\.sqlite")
        names = [p.name for p in self.directory.iterdir()] + list(self.current().values())
        generations = [int(m.group(1)) for name in names if (m := pattern.match(name))]

        return f"{view}.{max(generations, default=0) + 1}.sqlite"

    def switch(self, files: Mapping[str, str]) -> None:
        """Point the given views at new files, atomically, keeping the others."""
        with self._locked("pointer.lock"):
            merged = {**self.current(), **files}
            tmp = self.directory / f"{self.POINTER}.tmp"
            with open(tmp, "w", encoding="utf-8") as out:
                json.dump(merged, out, indent=2, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.directory / self.POINTER)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @contextlib.contextmanager
    def rebuilding(self) -> Iterator[None]:
        """Held while building new generations; refuses a second rebuild at once."""
        with open(self.directory / "rebuild.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RebuildRunningError(f"a rebuild of {self.directory} is running") from None
            yield  # closing the handle releases the lock

    def sweep(self) -> None:
        """Delete view files no generation points to (only when no rebuild runs)."""
        with contextlib.suppress(RebuildRunningError), self.rebuilding():
            keep = set(self.current().values())
            for p in self.directory.glob("*.sqlite*"):
                base = re.sub(r"-(wal|shm|journal)$", "", p.name)
                if base not in keep:
                    p.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        with open(self.directory / name, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
