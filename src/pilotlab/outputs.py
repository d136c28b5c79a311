"""Writing output folders and files without ever destroying a user's files.

pilotlab writes every output (a report folder, a power folder, a portfolio page) through this
module, which guarantees:

* **No partial outputs.** Files are written into a hidden staging folder beside the output folder
  (``.pilotlab-staging-<pid>-<random>``) and moved into place only once all of them are complete.
  A new folder is moved in as a whole (one rename); an existing one file by file.
* **Only pilotlab's own files are replaced.** A folder pilotlab creates gets a manifest,
  ``.pilotlab-output.json``, listing every file written and its SHA-256. On a later run into the
  same folder pilotlab replaces exactly those files, and refuses (naming the file) when the folder
  holds anything it did not write or a file it wrote has since been edited. It also refuses a
  non-empty folder without a manifest. Output folders nested inside (e.g. ``power/`` inside a run's
  folder) belong to pilotlab too and are left alone.
* **Clear errors.** A folder that cannot be created or written (its parent is a file, no
  permission, a read-only file system) is a :class:`~pilotlab.exceptions.PilotlabError` naming it;
  nothing is left behind, not even the parent folders pilotlab created on the way.
* **No stale staging folders.** Staging folders left by a killed run (their process is gone) are
  removed by the next run that writes beside them.

It also holds :func:`csv_cell`, the one rule every CSV writer applies to text cells so that a
spreadsheet never runs a formula hidden in a title, label or id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from pilotlab.exceptions import PilotlabError

__all__ = [
    "MANIFEST",
    "STAGING_PREFIX",
    "check_output_folder",
    "csv_cell",
    "csv_frame",
    "output_files",
    "output_folder",
    "write_output_files",
]

MANIFEST = ".pilotlab-output.json"
STAGING_PREFIX = ".pilotlab-staging-"
_MANIFEST_SCHEMA = "pilotlab.output/1"
_STALE_AFTER_S = 24 * 3600  # a staging folder this old is stale even if its process id was reused
# What ``pilotlab run`` wrote before output folders had a manifest (named in the refusal's hint).
_LEGACY_OUTPUTS = frozenset({"evidence.json", "report.html", "results.csv", "tables/"})
# Files an operating system drops into any folder a user browses: neither ours nor the user's work.
_OS_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

# ------------------------------------------------------------------------- CSV neutralisation

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?")


def csv_cell(value: Any) -> Any:
    """``value`` made safe for a spreadsheet: text that would start a formula gets a ``'`` first.

    Excel, LibreOffice and Google Sheets treat a cell beginning with ``=``, ``+``, ``-``, ``@``,
    a tab or a carriage return as a formula (OWASP, "CSV Injection"): a title such as
    ``=HYPERLINK(...)`` would run when a council officer opens the CSV. Such text is prefixed
    with a single quote, which spreadsheets show as text. Numbers, and text that is just a
    number such as ``-0.42`` or ``-4.1%``, are returned unchanged so they stay numbers; anything
    that is not text (floats, ints, booleans, ``None``) is returned as is.
    """
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _NUMBER.fullmatch(value):
        return value
    return "'" + value


def csv_frame(frame: Any) -> Any:
    """A copy of a pandas DataFrame with :func:`csv_cell` applied to its text cells and names."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("string", "str", "category"):
            out[col] = out[col].map(csv_cell)
    out.columns = [csv_cell(c) for c in out.columns]
    return out


# ------------------------------------------------------------------------------ file hashes


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):  # small chunks: bounded memory
            h.update(chunk)
    return h.hexdigest()


def _os_error(folder: Path, exc: OSError, option: str) -> PilotlabError:
    reason = exc.strerror or str(exc)
    return PilotlabError(
        f"{option}: cannot write the output folder '{folder}' ({reason}); choose a folder you "
        "can write to"
    )


# --------------------------------------------------------------------------- the manifest


def _read_manifest(folder: Path, option: str) -> dict[str, set[str]]:
    """Files the manifest in ``folder`` lists, each with the hashes pilotlab accepts as its own."""
    path = folder / MANIFEST
    fix = (
        f"choose another {option} folder, or delete '{folder}' if it holds only pilotlab outputs "
        "you no longer need"
    )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("schema") != _MANIFEST_SCHEMA:
            raise ValueError("not a pilotlab output manifest")
        accepted: dict[str, set[str]] = {}
        for key in ("files", "previous"):
            entries = doc.get(key) or {}
            if not isinstance(entries, dict):
                raise ValueError(f"'{key}' is not a mapping")
            for rel, value in entries.items():
                shas = value if isinstance(value, list) else [value]
                p = PurePosixPath(rel)
                if (
                    not all(isinstance(sha, str) for sha in shas)
                    or p.is_absolute()
                    or ".." in p.parts
                    or str(p) != rel
                    or rel in ("", ".", MANIFEST)
                ):
                    raise ValueError(f"invalid entry {rel!r}")
                accepted.setdefault(rel, set()).update(shas)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PilotlabError(
            f"{option}: '{path}' is not a manifest pilotlab wrote ({exc}), so pilotlab cannot tell "
            f"which files in '{folder}' are its own; {fix}"
        ) from None
    return accepted


def _is_pilotlab_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / MANIFEST).is_file()


def _walk(folder: Path, nested_ok: bool = True) -> Iterator[tuple[str, Path]]:
    """``(relative posix path, path)`` of every entry under ``folder``, skipping nested pilotlab
    output folders, pilotlab's staging folders and the manifest; directories end with ``/``."""
    for entry in sorted(folder.iterdir()):
        if entry.name == MANIFEST and entry.parent == folder:
            continue
        if entry.name.startswith(STAGING_PREFIX) or entry.name in _OS_LITTER:
            continue
        if entry.name == f"{MANIFEST}.tmp" and entry.parent == folder:
            continue  # a manifest update interrupted by a kill
        if nested_ok and _is_pilotlab_folder(entry):
            continue
        rel = entry.relative_to(folder).as_posix()
        if entry.is_dir() and not entry.is_symlink():
            yield rel + "/", entry
            for sub_rel, sub in _walk(entry, nested_ok):
                yield f"{rel}/{sub_rel}", sub
        else:
            yield rel, entry


def refuse_file_on_path(
    folder: Path, option: str = "-o/--output", noun: str = "output folder", fix: str = ""
) -> None:
    """Refuse ``folder`` when it, or the nearest of its parents that exists, is a file.

    Raises
    ------
    PilotlabError
        Naming ``option``, the folder and the file in the way, and ``fix`` (by default: choose
        another ``option`` folder).
    """
    fix = fix or f"choose another {option} folder (a new or empty one)"
    for parent in [folder, *folder.parents]:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                what = "is" if parent == folder else f"cannot be created: '{parent}' is"
                raise PilotlabError(
                    f"{option}: the {noun} '{folder}' {what} a file, not a folder; {fix}"
                )
            return


def check_output_folder(out_dir: Path, option: str = "-o/--output") -> dict[str, set[str]] | None:
    """Refuse an output folder pilotlab may not write; return its manifest (``None`` if new/empty).

    Call it before any long computation so a bad folder is reported at once; :func:`output_folder`
    calls it again just before moving the outputs in.

    Raises
    ------
    PilotlabError
        ``out_dir`` or one of its parents is a file; the folder holds a file pilotlab did not
        write, or a file pilotlab wrote has been changed since.
    """
    refuse_file_on_path(out_dir, option)
    new = f"choose another {option} folder (a new or empty one)"
    if not out_dir.is_dir():
        return None
    try:
        has_manifest = (out_dir / MANIFEST).exists() or (out_dir / MANIFEST).is_symlink()
        accepted = _read_manifest(out_dir, option) if has_manifest else {}
        for rel, path in _walk(out_dir):
            known = (
                any(k.startswith(rel) for k in accepted) if rel.endswith("/") else rel in accepted
            )
            if not known:
                legacy = not has_manifest and rel in _LEGACY_OUTPUTS
                hint = (
                    f" (a folder an earlier pilotlab wrote has no {MANIFEST}, so its files count "
                    "as yours: delete the folder if you no longer need it)"
                    if legacy
                    else ""
                )
                raise PilotlabError(
                    f"{option}: the output folder '{out_dir}' holds '{rel}', which pilotlab did "
                    f"not write, and pilotlab never replaces or deletes files it did not write; "
                    f"{new}{hint}"
                )
            if rel.endswith("/"):
                continue
            if path.is_symlink() or not path.is_file() or _sha256(path) not in accepted[rel]:
                raise PilotlabError(
                    f"{option}: '{out_dir / rel}' was changed after pilotlab wrote it, and "
                    f"pilotlab will not overwrite your edits; {new}, or move that file out of "
                    "the folder to let pilotlab write it again"
                )
    except OSError as exc:
        raise _os_error(out_dir, exc, option) from None
    return accepted if has_manifest else None


# ----------------------------------------------------------------------- staging folders


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would signal the process there; rely on age instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True


def clean_stale_staging(parent: Path) -> list[Path]:
    """Remove staging folders in ``parent`` left by runs that were killed; return them.

    A staging folder is stale when the process named in it no longer runs, or it is more than a
    day old. Only directories with pilotlab's staging prefix are touched.
    """
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = re.fullmatch(re.escape(STAGING_PREFIX) + r"(\d+)-[A-Za-z0-9_]+", entry.name)
        if m is None or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            old = now - entry.stat().st_mtime > _STALE_AFTER_S
        except OSError:
            continue
        if old or not _process_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.append(entry)
    return removed


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, outermost first."""
    missing = []
    for p in [folder, *folder.parents]:
        if p.is_dir():
            break
        missing.append(p)
    created = []
    for p in reversed(missing):
        p.mkdir()
        created.append(p)
    return created


def _remove_created(created: list[Path]) -> None:
    for p in reversed(created):
        try:
            p.rmdir()
        except OSError:
            break


def _write_manifest(folder: Path, files: dict[str, str], previous: dict[str, list[str]]) -> None:
    doc: dict[str, Any] = {
        "schema": _MANIFEST_SCHEMA,
        "note": "Files pilotlab wrote here; pilotlab replaces only these. Do not edit.",
        "files": dict(sorted(files.items())),
    }
    if previous:
        doc["previous"] = dict(sorted(previous.items()))
    tmp = folder / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def _staged_files(tmp: Path) -> dict[str, str]:
    files = {}
    for rel, path in _walk(tmp, nested_ok=False):
        if rel.endswith("/"):
            continue
        if path.is_symlink() or not path.is_file():
            raise PilotlabError(f"internal error: staged output '{rel}' is not a regular file")
        files[rel] = _sha256(path)
    return files


def _place(tmp: Path, out_dir: Path, files: dict[str, str], option: str) -> None:
    """Move the staged files into ``out_dir`` (checked again first), then update its manifest."""
    old = check_output_folder(out_dir, option)
    if old is None and not out_dir.exists():
        _write_manifest(tmp, files, {})
        os.rename(tmp, out_dir)  # a new folder appears complete, in one step
        return
    old = old or {}
    # While files move, the manifest accepts both the old and the new versions, so a run killed
    # half way leaves a folder the next run still recognises as its own.
    previous = {rel: sorted(shas) for rel, shas in old.items()}
    _write_manifest(out_dir, files, previous)
    for rel in sorted(files):
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, target)
    for rel in sorted(set(old) - set(files), reverse=True):  # outputs this run no longer writes
        (out_dir / rel).unlink(missing_ok=True)
        parent = (out_dir / rel).parent
        while parent != out_dir:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
    _write_manifest(out_dir, files, {})


@contextmanager
def output_folder(out_dir: Path, option: str = "-o/--output") -> Iterator[Path]:
    """Yield an empty staging folder; on success move its files into ``out_dir``.

    ``out_dir`` is checked first (:func:`check_output_folder`). If the block raises, nothing is
    written: the staging folder and any parent folders created for it are removed.
    """
    out_dir = Path(os.path.abspath(out_dir))
    check_output_folder(out_dir, option)
    created: list[Path] = []
    tmp: Path | None = None
    done = False
    try:
        try:
            created = _make_parents(out_dir.parent)
            clean_stale_staging(out_dir.parent)
            tmp = Path(
                tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out_dir.parent)
            )
            tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the output folder is not
        except OSError as exc:
            raise _os_error(out_dir, exc, option) from None
        yield tmp
        try:
            files = _staged_files(tmp)
            _place(tmp, out_dir, files, option)
        except OSError as exc:
            raise _os_error(out_dir, exc, option) from None
        done = True
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            _remove_created(created)


def _current(path: Path, accepted: set[str]) -> str:
    """The hash to keep listing for a file this write leaves alone: its own if it is ours."""
    if path.is_file() and not path.is_symlink():
        sha = _sha256(path)
        if sha in accepted:
            return sha
    return min(accepted)


def write_output_files(folder: Path, files: dict[str, str], option: str = "-o/--output") -> None:
    """Write ``files`` (relative path -> text) into ``folder``, which may hold other files.

    For outputs written into a folder the user keeps other things in (a portfolio page and its
    tables beside it). An existing file is replaced only if ``folder``'s manifest lists it with
    its current hash; anything else already there is refused, naming it. All files are staged
    first and then moved into place, and the manifest gains their entries (others are kept).
    """
    with output_files(folder, list(files), option) as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")


@contextmanager
def output_files(folder: Path, names: Sequence[str], option: str = "-o/--output") -> Iterator[Path]:
    """Yield a staging folder for the files ``names``; on success move them into ``folder``.

    The streaming form of :func:`write_output_files`: the caller writes each of ``names`` into
    the yielded folder (as large as it likes, line by line). ``folder`` may hold other files; an
    existing file of the same name is replaced only if ``folder``'s manifest lists it with its
    current hash, anything else is refused before the block runs. If the block raises, nothing
    in ``folder`` changes and any folders created for it are removed.
    """
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        check_output_folder(folder, option)  # refuses a path that runs through a file
    try:
        has_manifest = (folder / MANIFEST).exists() or (folder / MANIFEST).is_symlink()
        accepted = _read_manifest(folder, option) if has_manifest else {}
        for rel in names:
            target = folder / rel
            if not (target.exists() or target.is_symlink()):
                continue
            ours = (
                rel in accepted
                and target.is_file()
                and not target.is_symlink()
                and _sha256(target) in accepted[rel]
            )
            if not ours:
                raise PilotlabError(
                    f"{option}: '{target}' already exists and pilotlab did not write it (or it "
                    "was changed since), and pilotlab never overwrites such files; choose another "
                    "file name or folder, or move that file away"
                )
    except OSError as exc:
        raise _os_error(folder, exc, option) from None
    created: list[Path] = []
    tmp: Path | None = None
    done = False
    try:
        try:
            created = _make_parents(folder)
            clean_stale_staging(folder)
            tmp = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=folder))
        except OSError as exc:
            raise _os_error(folder, exc, option) from None
        try:
            yield tmp
        except OSError as exc:
            raise _os_error(folder, exc, option) from None
        try:
            for rel in names:
                if not (tmp / rel).is_file() or (tmp / rel).is_symlink():
                    raise PilotlabError(f"internal error: staged output '{rel}' was not written")
            hashes = {rel: _sha256(tmp / rel) for rel in names}
            kept = {r: _current(folder / r, shas) for r, shas in accepted.items() if r not in names}
            # accept old and new versions while files move (a killed run stays recognisable)
            previous = {r: sorted(shas) for r, shas in accepted.items() if r in names}
            _write_manifest(folder, kept | hashes, previous)
            for rel in names:
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / rel, folder / rel)
            _write_manifest(folder, kept | hashes, {})
            done = True
        except OSError as exc:
            raise _os_error(folder, exc, option) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            _remove_created(created)
