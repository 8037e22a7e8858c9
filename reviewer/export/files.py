"""The export's folders on disk: fsynced writes, PNG bytes, refusing a folder that is not an
earlier export, the atomic swap of the finished export into place, and cleaning up after
exports that were killed (their temporary folders; an earlier export left aside mid-swap is
put back)."""

from __future__ import annotations

import glob
import io
import os
import shutil
import tempfile
from pathlib import Path

from PIL import Image as PILImage

from reviewer.core.images import normalise

# A file that proves a directory is one of ours, so --force never deletes anything else.
MARKER = "manifest.jsonl"
EXIF_ORIENTATION = 0x0112
TEMP_INFIX, ASIDE_INFIX = ".tmp-", ".old-"


class ExportError(Exception):
    """The export cannot run; ``str(exc)`` says why, for people."""


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def png_bytes(data: bytes) -> bytes:
    """The image (a stored file's bytes) as PNG: a plain 8-bit upright PNG is copied byte for
    byte, anything else goes through `normalise` so Keras decodes every file the same way the
    model does."""
    with PILImage.open(io.BytesIO(data)) as image:
        upright = image.getexif().get(EXIF_ORIENTATION, 1) == 1
        if image.format == "PNG" and image.mode in ("L", "RGB") and upright:
            return data
        buffer = io.BytesIO()
        normalise(image).save(buffer, format="PNG")
        return buffer.getvalue()


def check_out(out: Path, force: bool) -> bool:
    """Return whether OUT holds an earlier export to replace; refuse anything unsafe."""
    if out.is_symlink():
        raise ExportError(f"{out} is a symbolic link: export to a plain folder")
    for parent in out.parents:  # the first one that exists must be a folder
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise ExportError(f"{out}: {parent} is not a directory")
            break
    if not out.exists():
        return False
    if not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    if not any(out.iterdir()):
        return False
    if not force:
        raise ExportError(f"{out} is not empty: choose another folder or pass --force")
    if not (out / MARKER).is_file():
        raise ExportError(f"{out} does not look like an export (no {MARKER}); not replacing it")
    return True


def _sibling(out: Path, infix: str) -> Path:
    """A new hidden sibling of OUT, named with this process's id (so a later export can tell
    whether the process that made it is still running)."""
    return Path(tempfile.mkdtemp(prefix=f".{out.name}{infix}{os.getpid()}-", dir=out.parent))


def work_folder(out: Path) -> Path:
    """The temporary folder this export is written in, beside OUT."""
    return _sibling(out, TEMP_INFIX)


def swap_in(work: Path, out: Path, replace: bool) -> None:
    """Rename the finished ``work`` to OUT; an earlier export there is first moved aside (a
    crash between the two renames leaves it aside, and `recover` puts it back)."""
    old = _sibling(out, ASIDE_INFIX) if replace else None
    if old:
        os.replace(out, old / out.name)
    os.replace(work, out)
    fsync(out.parent)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _owner_alive(folder: Path, infix: str) -> bool:
    """Whether the process named in a sibling's name (``.OUT<infix><pid>-…``) still runs and
    is another one (this process runs one export at a time: its own leftovers are stale)."""
    rest = folder.name.split(infix, 1)[-1]
    pid = rest.split("-", 1)[0]
    if not pid.isdigit():
        return False  # a name from before pids were recorded: its export is long gone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid()


def recover(out: Path) -> list[str]:
    """Clean up after exports to OUT that were killed: an earlier export left aside mid-swap is
    put back where OUT is missing, and the temporary and aside folders of processes that are
    gone are removed. Returns a line per thing done, for people."""
    done, parent = [], out.parent
    if not parent.is_dir():
        return done
    pattern = glob.escape(f".{out.name}")
    for aside in sorted(parent.glob(f"{pattern}{ASIDE_INFIX}*")):
        if _owner_alive(aside, ASIDE_INFIX):
            continue
        if not out.exists() and (aside / out.name).is_dir():
            os.replace(aside / out.name, out)
            done.append(f"restored the previous export to {out} (a killed export had moved it)")
        shutil.rmtree(aside, ignore_errors=True)
    for work in sorted(parent.glob(f"{pattern}{TEMP_INFIX}*")):
        if not _owner_alive(work, TEMP_INFIX):
            shutil.rmtree(work, ignore_errors=True)
            done.append(f"removed {work.name}, left by an export that was killed")
    return done
