"""Files: atomic writes, checksums and output locations, shared by every writer in lamae."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from .errors import LamaeError


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary name beside ``path``, then rename: a reader sees the old
    file or the new one, never half of one; a failed write leaves no temporary file behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc)


def write_error(path: str | os.PathLike, exc: BaseException, what: str = "write") -> LamaeError:
    """One line naming the path and the cause of a failed write; a full disk is named as such
    even when the library underneath reports it obscurely (torch's zip writer: 'unexpected pos')."""
    path = Path(path)
    free = None
    for p in (path, *path.parents):
        if p.exists():
            try:
                free = shutil.disk_usage(p).free
            except OSError:
                pass
            break
    text = str(exc)
    full = ((isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or "No space left" in text
            or "os error 28" in text or (free is not None and free < 1 << 20))
    cause = "the disk is full" if full else _cause(exc)
    hint = f" ({free / 1e6:.1f} MB free)" if full and free is not None else ""
    return LamaeError(f"{path}: cannot {what}: {cause}{hint}")


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` if needed and check that lamae can write into it, so a
    read-only file system, a folder without permission or a file in the way is reported before
    any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LamaeError(f"{path}: is a file, not a folder; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".lamae-write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except (OSError, NotADirectoryError) as exc:
        raise write_error(path, exc, "write the output folder") from None
    return path


def ensure_output_file(path: str | os.PathLike) -> Path:
    """Check that the output file ``path`` can be written (its folder is created if needed)."""
    path = Path(path)
    if path.is_dir():
        raise LamaeError(f"{path}: is a folder; --out names the output file here")
    ensure_output_dir(path.parent if str(path.parent) else Path("."))
    return path


class ResumableChunks:
    """Work done chunk by chunk that survives a crash (``prepare``, ``lamae embed``).

    ``state_path`` holds a fingerprint of the settings and the caller's counters; a chunk's
    outputs (written by the caller into ``parts``, plus its list of skipped records here) are on
    disk before ``commit`` moves the counters past it, so a run that stops anywhere resumes at
    the first chunk not committed. A leftover state with another fingerprint is refused with
    ``mismatch``; ``start`` (called once, for a fresh run) sets up whatever the run writes into.
    """

    def __init__(self, state_path: str | os.PathLike, parts: str | os.PathLike, fingerprint: dict,
                 counters: dict, *, mismatch: str, start=None):
        import json

        self.state_path, self.parts = Path(state_path), Path(parts)
        if self.state_path.exists():
            self.state = json.loads(self.state_path.read_text())
            if self.state.get("fingerprint") != fingerprint:
                raise LamaeError(mismatch)
        else:
            if start is not None:
                start()
            self.parts.mkdir(parents=True, exist_ok=True)
            self.state = {"fingerprint": fingerprint, **counters}
            self._save()

    def __getitem__(self, key):
        return self.state[key]

    def _save(self) -> None:
        import json

        atomic_write_text(self.state_path, json.dumps(self.state))

    def commit(self, k: int, skipped: list[dict], **counters) -> None:
        """Chunk ``k`` is written: record its skipped records, then move the counters."""
        import json

        atomic_write_text(self.parts / f"skipped-{k:06d}.json", json.dumps(skipped))
        self.state.update(counters)
        self._save()

    def skipped(self, n_chunks: int) -> list[dict]:
        """Every committed chunk's skipped records, in order."""
        import json

        return sum((json.loads((self.parts / f"skipped-{k:06d}.json").read_text()) for k in range(n_chunks)), [])
