"""Files: atomic writes, checksums and output locations, shared by every writer in lamae."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from .errors import LamaeError


def missing_folder(path: str | os.PathLike) -> str:
    """Why ``path`` is not a dataset folder: it does not exist, or it is a file (a CSV, one record)."""
    path = Path(path)
    if path.is_file():
        return (f"{path}: is a file, not a dataset folder; give the folder that holds the records "
                "(`lamae embed` and the API also read one ECG file)")
    return f"{path}: dataset folder does not exist"


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


# Output folders and who owns them. A command writes only into a new or empty folder, or into
# one holding its own earlier output, recognised by the marker file lamae writes there first
# (never by file names alone: users keep metrics.csv, report.md, checkpoints/ and config.json of
# their own). A command that writes files rather than a folder (embed) keeps the same record in a
# manifest beside its output. ``--overwrite`` removes only a folder of the kind the command makes.
MARKER = ".lamae.json"
# the temporary names of atomic_write_text (".tmp"), save_figure (".tmp.png"), and the write probe
_TEMPORARY = (".tmp", ".tmp.png")
_PROBE = ".lamae-write-test-"
# what each kind of folder is called in messages, and the command that makes it
KINDS = {"store": "store (`lamae prepare`)", "run": "pretraining run (`lamae pretrain`)",
         "probe": "probe report (`lamae probe`)", "finetune": "fine-tuning folder (`lamae finetune`)",
         "compare": "comparison (`lamae compare`)", "benchmark": "benchmark (`lamae benchmark`)",
         "leads": "reduced-lead report (`lamae leads`)", "ablate": "ablation report (`lamae ablate`)",
         "reconstruct": "reconstruction (`lamae reconstruct`)", "explain": "explanation (`lamae explain`)",
         "synth": "synthetic dataset (`lamae synth`)", "demo": "demo folder (`lamae demo`)",
         "checkpoint": "exported checkpoint (export_checkpoint / save_pretrained)", "embed": "embedding export (`lamae embed`)"}


def _label(kind: str) -> str:
    """'pretraining run' for 'run': the kind's name in messages, without its command."""
    return KINDS[kind].split(" (")[0]


# Kinds written beside the user's files: an export goes into a folder that may hold other files
# (a clone of a Hub repository, notes), as long as it replaces none of them.
SHARED_FOLDERS = {"checkpoint"}
# What a store holds: ``prepare --overwrite`` removes a store only when nothing else is in it.
STORE_NAMES = {"meta.json", "signals.npy", "index.parquet", "report.json", "report.md", "_progress.json", "_parts",
               MARKER}


def is_store(path: Path) -> bool:
    """A lamae store (finished or being made)."""
    return (path / "signals.npy").is_file() and ((path / "meta.json").is_file() or (path / "_progress.json").is_file())


def is_checkpoint(path: Path) -> bool:
    return (path / "model.safetensors").exists() and (path / "config.json").is_file()


def _same_or_inside(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or lies inside it (both resolved)."""
    return a == b or b in a.parents


def _transient(name: str) -> bool:
    """A name lamae writes for a moment (a temporary file, the write probe): not an output."""
    return name.startswith(_PROBE) or any(name.endswith(s) for s in _TEMPORARY)


def read_json(path: str | os.PathLike):
    """A JSON file's content, or None where it is missing, unreadable or not JSON."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def marker_kind(folder: str | os.PathLike) -> str | None:
    """The kind of lamae output ``folder`` holds by its marker, or None."""
    data = read_json(Path(folder) / MARKER)
    if isinstance(data, dict) and data.get("written_by") == "lamae" and data.get("kind") in KINDS:
        return data["kind"]
    return None


def _legacy_store(folder: Path) -> bool:
    """A store written before the marker existed, recognised by its content (meta.json's fields
    or an unfinished conversion's progress file), not by its file names."""
    if not (folder / "signals.npy").is_file():
        return False
    meta = read_json(folder / "meta.json")
    if isinstance(meta, dict) and "preprocessing" in meta and "n_rows" in meta and "index_sha256" in meta:
        return True
    progress = read_json(folder / "_progress.json")
    return isinstance(progress, dict) and isinstance(progress.get("fingerprint"), dict) and "next_item" in progress


def _legacy_run(folder: Path) -> bool:
    """A run written before the marker existed: its latest.json names a checkpoint whose config
    says it was saved at that step by lamae."""
    latest = read_json(folder / "latest.json")
    if not (isinstance(latest, dict) and isinstance(latest.get("path"), str) and isinstance(latest.get("step"), int)):
        return False
    config = read_json(folder / latest["path"] / "config.json")
    return isinstance(config, dict) and "lamae_version" in config and config.get("step") == latest["step"]


def _legacy_checkpoint(folder: Path) -> bool:
    config = read_json(folder / "config.json")
    return ((folder / "model.safetensors").is_file() and isinstance(config, dict) and "lamae_version" in config
            and "model" in config and "preprocessing" in config)


def _legacy_probe(folder: Path) -> bool:
    report = read_json(folder / "probe.json")
    return isinstance(report, dict) and {"checkpoint", "store", "pooling", "nodes"} <= set(report)


def _legacy_compare(folder: Path) -> bool:
    """A comparison an older lamae wrote: its report, or per-seed results that record their settings."""
    report = read_json(folder / "compare.json")
    if isinstance(report, dict) and {"config", "store"} <= set(report):
        return True
    results = [read_json(r) for r in folder.glob("runs/*/seed-*/result.json")]
    return bool(results) and all(isinstance(r, dict) and "settings" in r for r in results)


def _legacy_demo(folder: Path) -> bool:
    """A demo folder an older lamae wrote: its synthetic data and store, nothing else."""
    names = {p.name for p in folder.iterdir() if not _transient(p.name)}
    return names <= {"data", "store", "run", "probe"} and (folder / "store").is_dir() and _legacy_store(folder / "store")


def _legacy_benchmark(folder: Path) -> bool:
    stores = [p for p in folder.glob("stores/*") if p.is_dir()]
    return bool(stores) and all(_legacy_store(p) or marker_kind(p) == "store" for p in stores)


LEGACY = {"store": _legacy_store, "run": _legacy_run, "checkpoint": _legacy_checkpoint, "probe": _legacy_probe,
          "compare": _legacy_compare, "demo": _legacy_demo, "benchmark": _legacy_benchmark}


def shown(names: list[str], n: int = 5) -> str:
    """The first ``n`` names, and how many more."""
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def check_claim(path: str | os.PathLike, kind: str, *, writes=()) -> None:
    """Refuse, naming what is there, to let ``kind`` write into the folder ``path`` unless it is
    new, empty, or holds ``kind``'s own earlier output (its marker, or what an older lamae wrote,
    recognised by content); an export (``SHARED_FOLDERS``) may also go beside other files it
    would not replace. ``writes``: the names the command would replace, named first."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise LamaeError(f"{path}: is a file, not a folder; choose another --out")
    found = marker_kind(path)
    if found == kind:
        return
    if found is not None:
        raise LamaeError(f"{path}: holds a lamae {KINDS[found]}; a {_label(kind)} is written only "
                         "into a new or empty folder or its own earlier output: choose another --out")
    entries = sorted(p.name for p in path.iterdir() if not _transient(p.name))
    if not entries or (kind in LEGACY and LEGACY[kind](path)):
        return
    clash = sorted(set(entries) & set(writes))
    if kind in SHARED_FOLDERS and not clash:
        return  # an export beside the user's own files (a clone of a Hub repository): none is replaced
    if clash:
        raise LamaeError(f"{path}: holds files lamae did not write here, and this command would replace "
                         f"{shown(clash)}; it writes only into a new or empty folder or its own earlier "
                         "output: choose another --out")
    raise LamaeError(f"{path}: is not empty and holds no lamae {_label(kind)} ({shown(entries)}); "
                     "lamae writes only into a new or empty folder or its own earlier output: choose another --out")


def claim_output(path: str | os.PathLike, kind: str, *, writes=()) -> Path:
    """Check (as :func:`check_claim`), create the folder and mark it as ``kind``'s output."""
    import json

    from .version import __version__

    path = Path(path)
    check_claim(path, kind, writes=writes)
    ensure_output_dir(path)
    if marker_kind(path) != kind:
        try:
            atomic_write_text(path / MARKER, json.dumps({"written_by": "lamae", "kind": kind,
                                                         "lamae_version": __version__}) + "\n")
        except OSError as exc:
            raise write_error(path, exc, "write the output folder") from None
    return path


def _manifest(out: Path, kind: str) -> Path:
    """The manifest of a file output: one per name stem, since outputs share side files
    (emb.parquet and emb.npy both list their skipped records in emb.skipped.csv)."""
    return out.with_name(f".{out.with_suffix('').name}.{kind}.lamae.json")


def check_files(out: str | os.PathLike, kind: str, files, *, owned_anyway=()) -> set[str]:
    """Whether a command of ``kind`` may write the files ``files`` (beside and including ``out``):
    each must be absent or listed in the manifest a run of ``kind`` left for ``out`` (or be in
    ``owned_anyway``, recognised by its content); otherwise a LamaeError naming them. Returns the
    names the manifest lists."""
    out = Path(out)
    data = read_json(_manifest(out, kind))
    listed = set(data.get("files", [])) if isinstance(data, dict) and data.get("kind") == kind else set()
    owned = listed | {Path(f).name for f in owned_anyway}  # an older lamae's unfinished work
    foreign = [str(f) for f in files if (Path(f).exists() or Path(f).is_symlink()) and Path(f).name not in owned]
    if foreign:
        raise LamaeError(f"{shown(foreign, 3)}: already there and not written by an earlier `lamae {kind}` to "
                         f"{out}; lamae would replace {'it' if len(foreign) == 1 else 'them'}: move "
                         f"{'it' if len(foreign) == 1 else 'them'} or choose another --out")
    return listed


def claim_files(out: str | os.PathLike, kind: str, files, *, owned_anyway=()) -> Path:
    """Check (as :func:`check_files`), then list ``files`` in the manifest of ``out``, beside the
    names it listed already. Returns the manifest's path."""
    import json

    from .version import __version__

    listed = check_files(out, kind, files, owned_anyway=owned_anyway)
    manifest = _manifest(Path(out), kind)
    atomic_write_text(manifest, json.dumps({"written_by": "lamae", "kind": kind, "lamae_version": __version__,
                                            "files": sorted(listed | {Path(f).name for f in files})}) + "\n")
    return manifest


def check_removable(out: str | os.PathLike, *, inputs=(), option: str = "--overwrite") -> Path:
    """Refuse to delete ``out`` unless it is a lamae store (by its marker or, for a store an older
    lamae wrote, by its content) holding nothing else, and none of: an input of the
    command, a folder containing an input or inside one, the current directory, the home
    directory, the root. Returns the path, resolved."""
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
    entries = sorted(p.name for p in path.iterdir() if not _transient(p.name))
    if not entries:
        return path
    found = marker_kind(path)
    if found is not None and found != "store":
        raise LamaeError(f"{out}: holds a lamae {KINDS[found]}, not a store; {option} removes only a store: "
                         "choose another --out")
    if found is None and not _legacy_store(path):
        raise LamaeError(f"{out}: holds files lamae did not write ({shown(entries)}) and no lamae store; "
                         f"{option} removes only a store: choose another --out")
    foreign = [n for n in entries if n not in STORE_NAMES]
    if foreign:
        raise LamaeError(f"{out}: holds files lamae did not write ({shown(foreign)}) beside its store; "
                         f"{option} would delete them: choose another --out")
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


def output_dir(path: str | os.PathLike, kind: str, *, allow: str | None = None, writes=()) -> Path:
    """An output folder a command or the API may write into, claimed for ``kind`` (see
    :func:`claim_output`): named, not a store or a checkpoint folder (nor inside one) unless it
    makes that kind itself (``allow``), new, empty or ``kind``'s own, writable."""
    if path is None or not str(path).strip():
        raise LamaeError(f"output folder {path!r}: name a folder to write into")
    refuse_lamae_folder(path, allow=allow)
    return claim_output(path, kind, writes=writes)


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
