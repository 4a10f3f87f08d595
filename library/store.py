"""The library's two folders of entries, read together: shipped kernels and the user's own.

Layout, the same in both roots::

    <root>/<op>/<entry_id>/kernel.py        the verified ModelNew source
    <root>/<op>/<entry_id>/manifest.json    its Manifest

The shipped root is the package's ``kernels/`` folder and is never written; the user root is
``settings.library_dir`` (``$KERNELLOOP_LIBRARY``). Where both hold an entry id the user's wins.
``manifest.json`` is written last and atomically, so a reader sees a whole entry or none.
Parsed manifests are cached by file identity (path, inode, mtime, size): ``dispatch`` lists
entries on every call, and that must cost a few ``stat`` calls, not a JSON parse per entry.

Archives (:meth:`Library.export` / :meth:`Library.import_`) are ``.tar.gz`` files with the same
layout; importing reads members into memory one by one (never ``extractall``), accepts only
``<op>/<entry_id>/{kernel.py,manifest.json}`` regular files, and checks that every manifest is
valid and that its entry id matches its source before writing anything.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tarfile
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ..errors import KernelloopError
from .manifest import (
    Manifest,
    ManifestError,
    entry_id_for,
    is_valid_entry_id,
    is_valid_op,
)

SHIPPED_DIR = Path(__file__).resolve().parent / "kernels"
KERNEL = "kernel.py"
MANIFEST = "manifest.json"
_MAX_MEMBER_BYTES = 8 << 20  # a kernel source or manifest larger than this is not one

# path -> ((inode, mtime_ns, size), manifest). Writes replace the file, so the inode changes even
# where mtime is too coarse to tell two writes apart.
_cache: dict[str, tuple[tuple[int, int, int], Manifest]] = {}
_warned: set[tuple[str, int, int, int]] = set()
_lock = threading.Lock()
_writes = [0]  # entries written by this process: the dispatcher re-decides at once after one


def writes() -> int:
    return _writes[0]


def _changed() -> None:
    with _lock:
        _writes[0] += 1


class LibraryError(KernelloopError):
    """A library operation that cannot be done; the message says what to do instead."""


class EntryNotFound(LibraryError):
    pass


class Library:
    def __init__(self, user_dir: Path, shipped_dir: Path) -> None:
        self.user_dir = Path(user_dir)
        self.shipped_dir = Path(shipped_dir)

    @classmethod
    def default(cls) -> Library:
        """``settings.library_dir`` plus the kernels shipped with the package."""
        from .. import settings

        cfg = settings.get()
        return cls(cfg.library_dir or cfg.cache_dir / "library", SHIPPED_DIR)

    def __repr__(self) -> str:
        return f"Library(user_dir={str(self.user_dir)!r}, shipped_dir={str(self.shipped_dir)!r})"

    # --- reading ---------------------------------------------------------------------------------
    def entries(self, op: str | None = None) -> list[Manifest]:
        """Every entry (of ``op``), user entries shadowing shipped ones with the same id."""
        found: dict[str, Manifest] = {}
        for location, root in (("shipped", self.shipped_dir), ("user", self.user_dir)):
            for manifest in _scan(root, location, op):
                found[manifest.entry_id] = manifest
        return sorted(found.values(), key=lambda m: (m.op, m.entry_id))

    def get(self, entry_id: str) -> Manifest:
        _check_id(entry_id)
        for manifest in self.entries():
            if manifest.entry_id == entry_id:
                return manifest
        raise EntryNotFound(f"no library entry {entry_id!r}; `kernelloop library list` shows them")

    def source(self, entry_id: str) -> str:
        return self.get(entry_id).source_path.read_text(encoding="utf-8")

    # --- writing (user library only) -------------------------------------------------------------
    def add(self, manifest: Manifest, source: str) -> Manifest:
        """Store ``source`` with ``manifest`` in the user library (replacing the same entry id)."""
        _check_consistent(manifest, source)
        folder = self.user_dir / manifest.op / manifest.entry_id
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / KERNEL, source)
        _write_atomic(folder / MANIFEST, manifest.to_json())  # last: it makes the entry visible
        _changed()
        return dataclasses.replace(manifest, folder=folder, location="user")

    def update(self, manifest: Manifest) -> Manifest:
        """Rewrite the manifest of an existing user entry (verification, staleness, timing)."""
        _check_id(manifest.entry_id)
        folder = self.user_dir / manifest.op / manifest.entry_id
        if not (folder / MANIFEST).is_file():
            if self._shipped_folder(manifest.entry_id) is not None:
                raise LibraryError(
                    f"entry {manifest.entry_id} is shipped with kernelloop and read-only"
                )
            raise EntryNotFound(f"no user library entry {manifest.entry_id!r} to update")
        _write_atomic(folder / MANIFEST, manifest.to_json())
        _changed()
        return dataclasses.replace(manifest, folder=folder, location="user")

    def remove(self, entry_id: str) -> Manifest:
        """Delete a user entry; shipped entries are part of the package and cannot be removed."""
        _check_id(entry_id)
        user = [m for m in _scan(self.user_dir, "user", None) if m.entry_id == entry_id]
        if not user:
            if self._shipped_folder(entry_id) is not None:
                raise LibraryError(
                    f"entry {entry_id} is shipped with kernelloop (in {self.shipped_dir}) and "
                    "cannot be removed; only entries of your own library "
                    f"({self.user_dir}) can"
                )
            raise EntryNotFound(
                f"no user library entry {entry_id!r}; see `kernelloop library list`"
            )
        folder = user[0].folder
        assert folder is not None
        # Renamed away first, so no reader ever sees half a folder.
        doomed = folder.with_name(f".removed-{entry_id}-{os.getpid()}")
        os.replace(folder, doomed)
        shutil.rmtree(doomed)
        _changed()
        return user[0]

    # --- archives --------------------------------------------------------------------------------
    def export(self, entry_ids: Iterable[str] | None, dest: Path) -> Path:
        """Write the named entries (all when None) to a ``.tar.gz`` at ``dest``."""
        chosen = self.entries() if entry_ids is None else [self.get(e) for e in entry_ids]
        if not chosen:
            raise LibraryError("the library holds no entries to export")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        with tarfile.open(tmp, "w:gz") as tar:
            for m in chosen:
                for name, data in (
                    (KERNEL, m.source_path.read_bytes()),
                    (MANIFEST, m.to_json().encode()),
                ):
                    info = tarfile.TarInfo(f"{m.op}/{m.entry_id}/{name}")
                    info.size, info.mode = len(data), 0o644
                    tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, dest)
        return dest

    def import_(self, archive: Path) -> list[Manifest]:
        """Add every entry of an exported archive to the user library, all or nothing."""
        files: dict[tuple[str, str], dict[str, bytes]] = {}
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    op, entry_id, name = _member_parts(member)
                    fh = tar.extractfile(member)
                    assert fh is not None  # regular files only, checked above
                    files.setdefault((op, entry_id), {})[name] = fh.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise LibraryError(f"{archive} is not a readable .tar.gz archive: {exc}") from None
        if not files:
            raise LibraryError(f"{archive} holds no library entries")
        staged: list[tuple[Manifest, str]] = []
        for (op, entry_id), parts in sorted(files.items()):
            where = f"{archive}: {op}/{entry_id}"
            missing = {KERNEL, MANIFEST} - set(parts)
            if missing:
                raise LibraryError(f"{where} lacks {', '.join(sorted(missing))}")
            try:
                manifest = Manifest.from_json(parts[MANIFEST].decode("utf-8"))
                source = parts[KERNEL].decode("utf-8")
                if (manifest.op, manifest.entry_id) != (op, entry_id):
                    raise ManifestError(
                        f"its manifest describes {manifest.op}/{manifest.entry_id} instead"
                    )
                _check_consistent(manifest, source)
            except (ManifestError, UnicodeDecodeError) as exc:
                raise LibraryError(f"{where} is not a valid entry: {exc}") from None
            staged.append((manifest, source))
        return [self.add(manifest, source) for manifest, source in staged]

    # --- internals -------------------------------------------------------------------------------
    def _shipped_folder(self, entry_id: str) -> Path | None:
        for m in _scan(self.shipped_dir, "shipped", None):
            if m.entry_id == entry_id:
                return m.folder
        return None


def _check_id(entry_id: str) -> None:
    if not is_valid_entry_id(entry_id):
        raise LibraryError(f"{entry_id!r} is not an entry id (see `kernelloop library list`)")


def read_source(manifest: Manifest) -> str:
    """The entry's ``kernel.py``, refused (:class:`ManifestError`) unless it is the source its
    entry id names: the verdict behind an entry is for that source, so a kernel edited or
    replaced in the library folder after promotion is never run as the verified one."""
    source = manifest.source_path.read_text(encoding="utf-8")
    _check_consistent(manifest, source)
    return source


def _check_fields(manifest: Manifest) -> None:
    """The id's op, arch, dtype and bucket parts must be the manifest's (checked on every
    scan, without reading the source): an edited bucket or dtype would serve calls the entry was
    never verified on."""
    parts = manifest.entry_id.split("-")
    expected = entry_id_for(manifest.op, "", manifest.arch, manifest.dtype, manifest.bucket)
    if len(parts) != 5 or [parts[0], *parts[2:]] != [
        p for i, p in enumerate(expected.split("-")) if i != 1
    ]:
        raise ManifestError(
            f"entry id {manifest.entry_id!r} does not name its op, arch, dtype and bucket "
            f"({manifest.op}, {manifest.arch}, {manifest.dtype}, {manifest.bucket})"
        )


def _check_consistent(manifest: Manifest, source: str) -> None:
    """The id must name this source for this op/arch/dtype/bucket: a manifest cannot vouch for
    code it was not written for."""
    expected = entry_id_for(manifest.op, source, manifest.arch, manifest.dtype, manifest.bucket)
    if manifest.entry_id != expected:
        raise ManifestError(
            f"entry id {manifest.entry_id!r} does not match its source and fields "
            f"(expected {expected!r})"
        )
    if not is_valid_op(manifest.op):
        raise ManifestError(f"op {manifest.op!r} is not a plain folder name")


def _member_parts(member: tarfile.TarInfo) -> tuple[str, str, str]:
    path = PurePosixPath(member.name)
    parts = path.parts
    if (
        not member.isfile()  # no links, devices or folders-as-files
        or path.is_absolute()
        or len(parts) != 3
        or not is_valid_op(parts[0])
        or not is_valid_entry_id(parts[1])
        or parts[2] not in (KERNEL, MANIFEST)
    ):
        raise LibraryError(
            f"archive member {member.name!r} is not <op>/<entry_id>/(kernel.py|manifest.json); "
            "refusing the archive (only files written by `kernelloop library export` import)"
        )
    if member.size > _MAX_MEMBER_BYTES:
        raise LibraryError(f"archive member {member.name!r} is {member.size} bytes; too large")
    return parts[0], parts[1], parts[2]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _scan(root: Path, location: str, op: str | None) -> list[Manifest]:
    if op is not None:
        op_dirs = [root / op] if is_valid_op(op) else []
    else:
        try:
            op_dirs = [p for p in root.iterdir() if not p.name.startswith(".")]
        except OSError:  # no such root yet
            return []
    out: list[Manifest] = []
    for op_dir in op_dirs:
        try:
            folders = [p for p in op_dir.iterdir() if not p.name.startswith(".")]
        except OSError:
            continue
        for folder in folders:
            manifest = _load(folder, location)
            if manifest is not None:
                out.append(manifest)
    return out


def _load(folder: Path, location: str) -> Manifest | None:
    path = folder / MANIFEST
    try:
        st = path.stat()
    except OSError:
        return None  # not (yet) an entry: manifest.json is written last
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    key = (str(path), *stamp)
    with _lock:
        cached = _cache.get(str(path))
    if cached is not None and cached[0] == stamp and cached[1].location == location:
        return cached[1]
    try:
        manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
        if (manifest.op, manifest.entry_id) != (folder.parent.name, folder.name):
            raise ManifestError(
                f"it describes {manifest.op}/{manifest.entry_id} but lies in "
                f"{folder.parent.name}/{folder.name}"
            )
        _check_fields(manifest)
    except (ManifestError, OSError, UnicodeDecodeError) as exc:
        # One bad entry must not break every dispatch of the op: skip it, and say so once.
        if key not in _warned:
            _warned.add(key)
            warnings.warn(
                f"skipping library entry {folder}: {exc}; delete the folder or re-promote it",
                stacklevel=3,
            )
        return None
    manifest = dataclasses.replace(manifest, folder=folder, location=location)
    with _lock:
        _cache[str(path)] = (stamp, manifest)  # manifests are frozen: sharing them is safe
    return manifest
