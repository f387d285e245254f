"""Safe extraction of zip archives sent with submissions.

Members whose names are absolute or climb out with ``..``, symbolic links, and archives
that would expand past a size limit are refused with one sentence; nothing is written
outside the temporary folder the caller gives.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import InputError

MAX_UNCOMPRESSED_BYTES = 4 * 1024**3
"""Refuse archives that would expand past 4 GiB."""

MAX_RATIO = 200
"""Refuse members compressed more than 200:1 and larger than 10 MB (zip bombs)."""


def open_zip(path: str | Path) -> zipfile.ZipFile:
    """Open a zip archive or raise :class:`InputError` naming the file."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise InputError(f"{path.name} is not a readable zip archive ({_short(exc)}).") from None
    except Exception as exc:  # zlib errors on corrupt members
        raise InputError(f"{path.name} is not a readable zip archive ({_short(exc)}).") from None
    if bad is not None:
        zf.close()
        raise InputError(f"{path.name} is a damaged zip archive: member {bad!r} fails its checksum.")
    return zf


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def check_members(zf: zipfile.ZipFile, name: str, *, max_bytes: int = MAX_UNCOMPRESSED_BYTES) -> list[zipfile.ZipInfo]:
    """The archive's file members after the safety checks (raises :class:`InputError`).

    Parameters
    ----------
    zf : an open archive
    name : the archive's file name, for messages
    max_bytes : limit on the total uncompressed size in bytes
    """
    members = []
    total = 0
    for info in zf.infolist():
        member = info.filename
        p = PurePosixPath(member.replace("\\", "/"))
        if p.is_absolute() or member.startswith(("/", "\\")) or ".." in p.parts or (len(member) > 1 and member[1] == ":"):
            raise InputError(f"{name} holds the member {member!r}, whose path leaves the archive folder; it was not extracted.")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise InputError(f"{name} holds the symbolic link {member!r}; archives with links are not extracted.")
        if info.is_dir():
            continue
        total += info.file_size
        if total > max_bytes:
            raise InputError(f"{name} would expand to more than {max_bytes // 1024**2} MB; it was not extracted.")
        if info.file_size > 10 * 1024**2 and info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise InputError(f"{name} member {member!r} is compressed more than {MAX_RATIO}:1 (a zip bomb?); it was not extracted.")
        members.append(info)
    return members


def safe_extract(path: str | Path, dest: str | Path, *, max_bytes: int = MAX_UNCOMPRESSED_BYTES) -> list[Path]:
    """Extract a zip archive into ``dest`` after the safety checks; return the files written.

    Raises
    ------
    InputError
        The archive is broken, holds an unsafe member, or is too large.
    """
    path, dest = Path(path), Path(dest).resolve()
    with open_zip(path) as zf:
        members = check_members(zf, path.name, max_bytes=max_bytes)
        out = []
        for info in members:
            target = (dest / info.filename.replace("\\", "/")).resolve()
            if dest not in target.parents:
                raise InputError(f"{path.name} holds the member {info.filename!r}, whose path leaves the archive folder.")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                written = 0
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size + 1024:
                        raise InputError(f"{path.name} member {info.filename!r} is larger than its header says.")
                    dst.write(chunk)
            out.append(target)
    return out


def member_names(path: str | Path) -> list[str]:
    """Names of the file members of a zip archive (after the safety checks)."""
    with open_zip(path) as zf:
        return [i.filename for i in check_members(zf, Path(path).name)]
