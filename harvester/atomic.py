"""Files a user reads, written whole or not at all.

`atomic_write(path)` writes to a temporary file beside the target and
renames it over the target once complete, so a reader never sees half a
file. Unlike a bare `mkstemp` (always 0600):

* the new file gets the mode of the file it replaces, else the one the
  umask gives a new file (0644 under the usual 022);
* a target that is a symlink is written through: the link's target is
  replaced, the link stays;
* temporary files of runs killed mid-write (`.<name>.<pid>.<random>.tmp`,
  up to the size of the output) are removed by the next write of the same
  file, once the process that wrote them is gone.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

#: a temporary file without a readable PID (an older format) is stale after this long
STALE_AFTER_S = 3600.0


def umask() -> int:
    """The process's umask, read without changing it where the OS tells it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove what killed writers of `target` left behind; returns them."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:(\d+)\.)?[^.]+\.tmp$")
    removed = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if not m:
            continue
        try:
            if m.group(1) is not None:
                stale = int(m.group(1)) != os.getpid() and not _alive(int(m.group(1)))
            else:
                stale = time.time() - entry.stat().st_mtime > STALE_AFTER_S
            if stale:
                entry.unlink()
                removed.append(entry)
        except OSError:
            continue
    return removed


def resolve_target(path: str | os.PathLike) -> Path:
    """The file to replace: a symlink's final target, else `path` itself."""
    target = Path(path)
    if target.is_symlink():
        return Path(os.path.realpath(target))
    return target


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """A file object whose content appears at `path` only once the block
    ends without an exception (see the module doc)."""
    target = resolve_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    try:
        file_mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        file_mode = 0o666 & ~umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, file_mode)
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
