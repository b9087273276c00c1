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


def _free_space(path: Path) -> tuple[int, int] | None:
    """(free, total) bytes of the file system holding ``path`` or its nearest existing parent."""
    for p in (path, *path.parents):
        if p.exists():
            try:
                usage = shutil.disk_usage(p)
            except OSError:
                return None
            return usage.free, usage.total
    return None


def write_error(path: str | os.PathLike, exc: BaseException, what: str = "write") -> LamaeError:
    """One line naming the path and the cause of a failed write. A full disk is named as such
    even when the library underneath reports it obscurely (torch's zip writer: 'unexpected pos'),
    but only then: an error with its own cause (a path under /proc, permission denied) keeps it,
    whatever the free space of a pseudo file system (/proc has none) reads."""
    path = Path(path)
    text = str(exc)
    errno_ = exc.errno if isinstance(exc, OSError) else None
    usage = _free_space(path)
    free = usage[0] if usage else None
    real_fs = usage is not None and usage[1] > 0  # /proc, /sys: total 0, nothing can be stored there
    if errno_ in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "os error 28" in text:
        full = True
    elif errno_ is None and real_fs and free is not None and free < 1 << 20:
        full = True  # a library's own error (torch's 'unexpected pos') while the disk has no room
    else:
        full = False
    if full:
        cause = "the disk is full"
    elif not real_fs and usage is not None:
        cause = f"{_cause(exc)} (it is on a pseudo file system such as /proc, where files cannot be written)"
    elif "unexpected pos" in text:
        cause = f"the write stopped part-way (the disk may have filled or the file system failed: {text.strip()})"
    else:
        cause = _cause(exc)
    hint = f" ({free / 1e6:.1f} MB free)" if full and free is not None and real_fs else ""
    return LamaeError(f"{path}: cannot {what}: {cause}{hint}")


# What lamae itself writes into a store or a run folder: ``--overwrite`` removes a folder only
# when everything in it is one of these, or one being written (its temporary name, below), so a
# mistyped --out can never delete a user's own files. tests/test_hostile_round3.py checks that a
# real store and a real run pass.
STORE_NAMES = {"meta.json", "signals.npy", "index.parquet", "report.json", "report.md", "_progress.json", "_parts"}
RUN_NAMES = {"latest.json", "checkpoints", "loss.csv", "loss.png", "metrics.csv", "pretrain_config.json",
             "tensorboard", "wandb"}
# the temporary names of atomic_write_text (".tmp"), save_figure (".tmp.png"), and the write probe
_TEMPORARY = (".tmp", ".tmp.png")
_PROBE = ".lamae-write-test-"


def _written_by_lamae(name: str) -> bool:
    for suffix in _TEMPORARY:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name in STORE_NAMES or name in RUN_NAMES or name.startswith(_PROBE)


def is_store(path: Path) -> bool:
    """A lamae store (finished or being made)."""
    return (path / "signals.npy").is_file() and ((path / "meta.json").is_file() or (path / "_progress.json").is_file())


def is_checkpoint(path: Path) -> bool:
    return (path / "model.safetensors").exists() and (path / "config.json").is_file()


def _same_or_inside(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or lies inside it (both resolved)."""
    return a == b or b in a.parents


def check_removable(out: str | os.PathLike, *, inputs=(), option: str = "--overwrite") -> Path:
    """Refuse to delete ``out`` unless it is a folder holding only what lamae writes (a store or a
    run), and none of: an input of the command, a folder containing an input or inside one, the
    current directory, the home directory, the root. Returns the path, resolved."""
    text = str(out)
    if not text.strip():
        raise LamaeError(f"{option}: an empty output path names the current directory; refusing to delete it")
    path = Path(out).expanduser().resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if path == Path(path.anchor):
        raise LamaeError(f"{out}: is the root folder; {option} refuses to delete it")
    if _same_or_inside(home, path):
        raise LamaeError(f"{out}: is your home folder or contains it; {option} refuses to delete it")
    if _same_or_inside(cwd, path):
        raise LamaeError(f"{out}: is the current directory or contains it; {option} refuses to delete it")
    for given in inputs:
        if given is None or not str(given).strip():
            continue
        src = Path(given).expanduser().resolve()
        if _same_or_inside(path, src) or _same_or_inside(src, path):
            raise LamaeError(f"{out}: is the input {given} or "
                             f"{'inside it' if _same_or_inside(path, src) else 'contains it'}; "
                             f"{option} refuses to delete it")
    if not path.exists():
        return path
    if not path.is_dir():
        raise LamaeError(f"{out}: is a file, not a lamae output folder; {option} refuses to delete it")
    foreign = sorted(p.name for p in path.iterdir() if not _written_by_lamae(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise LamaeError(f"{out}: holds files lamae did not write ({shown}); {option} deletes only a lamae "
                         "store or run: choose another --out")
    return path


def owning_lamae_folder(path: str | os.PathLike) -> tuple[Path, str] | None:
    """The store or checkpoint folder that ``path`` is or lies inside, with its kind, or None."""
    p = Path(path).expanduser().resolve()
    for folder in (p, *p.parents):
        if folder.is_dir():
            if is_store(folder):
                return folder, "store"
            if is_checkpoint(folder):
                return folder, "checkpoint"
    return None


def refuse_lamae_folder(path: str | os.PathLike, *, allow: str | None = None) -> None:
    """No command writes into a store or a checkpoint folder it was not asked to make: ``path``
    (an output folder or file) may not be one or lie inside one. ``allow``: the kind the command
    makes itself at exactly ``path`` (prepare resuming its store)."""
    found = owning_lamae_folder(path)
    if found is None:
        return
    folder, kind = found
    if allow == kind and folder == Path(path).expanduser().resolve():
        return
    where = "is" if folder == Path(path).expanduser().resolve() else "lies inside"
    raise LamaeError(f"{path}: {where} the lamae {kind} {folder}; writing there would damage it: "
                     "choose an --out outside it")


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` if needed and check that lamae can write into it, so a
    read-only file system, a folder without permission or a file in the way is reported before
    any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LamaeError(f"{path}: is a file, not a folder; choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f"{_PROBE}{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except (OSError, NotADirectoryError) as exc:
        raise write_error(path, exc, "write the output folder") from None
    return path


def output_dir(path: str | os.PathLike, *, allow: str | None = None) -> Path:
    """An output folder a command or the API may write into: not empty, not a store or a
    checkpoint folder (nor inside one) unless it makes that kind itself (``allow``), writable."""
    if path is None or not str(path).strip():
        raise LamaeError(f"output folder {path!r}: name a folder to write into")
    refuse_lamae_folder(path, allow=allow)
    return ensure_output_dir(path)


def ensure_output_file(path: str | os.PathLike) -> Path:
    """Check that the output file ``path`` can be written (its folder is created if needed)."""
    if path is None or not str(path).strip():
        raise LamaeError(f"output file {path!r}: name a file to write")
    path = Path(path)
    if path.is_dir():
        raise LamaeError(f"{path}: is a folder; --out names the output file here")
    refuse_lamae_folder(path)
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
