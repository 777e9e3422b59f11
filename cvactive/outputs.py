"""One output discipline for every command: check first, write through a temporary name, lock the
folder, delete only what cvactive wrote.

Every command that writes follows the same four rules:

1. **Check before work.** :func:`check_file_output` and :func:`check_dir_output` refuse, in one
   line, an output that is a folder where a file is wanted (or the reverse), sits under a file, is
   not writable, or is one of the command's inputs, before any model loads or any byte is written.
2. **Whole files or none.** :func:`atomic_path` / :func:`atomic_open` write to a temporary name in
   the same folder and ``os.replace`` it onto the final name only when the block ends without an
   error, so a killed or failed run leaves the previous file as it was and never a file that
   looks complete.
3. **One writer per folder.** :func:`folder_lock` holds an exclusive ``flock`` on
   ``DIR/.cvactive.lock`` (released by the kernel when the process dies, so no stale locks); a
   second run into the same folder fails at once with a line naming the running process.
4. **Delete only what we wrote.** :func:`claim_dir` marks a folder cvactive created (or found
   empty) with ``.cvactive-owner.json``, which lists the files the command wrote there
   (:meth:`OwnedDir.record`). :meth:`OwnedDir.remove_owned` deletes only those; a non-empty folder
   without the marker is refused, naming what is in it. :func:`move_aside` renames an old output
   out of the way instead of deleting it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cvactive.errors import OutputError

LOCK_NAME = ".cvactive.lock"
OWNER_NAME = ".cvactive-owner.json"
#: files of ours that never count as user content of a folder
OUR_NAMES = frozenset({LOCK_NAME, OWNER_NAME})


def check_path_text(path: str | os.PathLike[str], what: str = "path") -> Path:
    """``path`` as a :class:`Path`, refused when its name is not valid UTF-8.

    Python keeps undecodable bytes of a file name as lone surrogates; OpenCV crashes on them and
    JSON, YAML and FiftyOne cannot store them. Rename the file instead.
    """
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise OutputError(f"{what} {shown!r} is not valid UTF-8; rename it") from None
    return Path(text)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _writable_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder."""
    parent = path.parent
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {path} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path} cannot be written: {parent} is not writable")


def check_file_output(
    path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] = (), what: str = "--out"
) -> Path:
    """Check, before any work, that ``path`` can receive a file; return it as a :class:`Path`.

    Raises:
        OutputError: it is a folder, sits under a file, is not writable, is not valid UTF-8, or
            is one of ``inputs``.
    """
    out = check_path_text(path, what)
    if out.is_dir():
        raise OutputError(f"{what} {out} is a folder; give a file name")
    _writable_parent(out, what)
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputError(f"{what} {out} is read-only")
    for item in inputs:
        if _same(out, Path(item)):
            raise OutputError(f"{what} {out} is also an input; write to another file")
    return out


def check_dir_output(
    path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] = (), what: str = "--out"
) -> Path:
    """Check, before any work, that ``path`` can be (or is) an output folder; return it.

    Raises:
        OutputError: it is a file, sits under a file, is not writable, is not valid UTF-8, or is an
            input, holds one, or lies inside one.
    """
    out = check_path_text(path, what)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{what} {out} is a file; give a folder")
    _writable_parent(out / "x" if out.exists() else out, what)
    resolved = out.resolve()
    for item in inputs:
        src = Path(item).resolve()
        if resolved == src or resolved in src.parents or src in resolved.parents:
            raise OutputError(f"{what} {out} overlaps the input {item}; write to a folder of its own")
    return out


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it becomes ``path``.

    On an error (or a kill) the temporary file is removed (or left under a hidden ``.tmp`` name)
    and ``path`` keeps its old content.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(final)
    try:
        yield tmp
        if fsync and tmp.is_file():
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, fsync: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; it replaces ``path`` only when the block succeeds."""
    if not mode.startswith(("w", "x")):
        raise ValueError(f"atomic_open writes new files; mode {mode!r}")
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path, fsync=fsync) as tmp, tmp.open(mode, encoding=encoding) as fh:
        yield fh
        fh.flush()


def write_text_atomic(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    with atomic_open(path, "w", fsync=fsync) as fh:
        fh.write(text)


def write_json_atomic(path: str | os.PathLike[str], data: Any, *, fsync: bool = True, indent: int | None = 2) -> None:
    """Write ``data`` as JSON to ``path`` whole or not at all."""
    write_text_atomic(path, json.dumps(data, indent=indent) + "\n", fsync=fsync)


def _holder(lock: Path) -> str:
    try:
        info = json.loads(lock.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    where = f"pid {info.get('pid', '?')} on {info.get('host', '?')}"
    return f"{where} ({info.get('command', '?')}, since {info.get('since', '?')})"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], command: str) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) while the block runs.

    Raises:
        OutputError: another process holds it (the message names it).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with _flock(out / LOCK_NAME, str(out), command):
        yield out


@contextlib.contextmanager
def path_lock(path: str | os.PathLike[str], command: str) -> Iterator[Path]:
    """Hold an exclusive lock on one output name (a file or folder) while the block runs.

    The lock file is ``.cvactive.<name>.lock`` beside ``path`` (its folder is created if missing),
    so two runs writing different names in one folder both go ahead, and two writing the same
    name do not.

    Raises:
        OutputError: another process holds it (the message names it).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _flock(out.with_name(f".cvactive.{out.name}.lock"), str(out), command):
        yield out


@contextlib.contextmanager
def _flock(lock: Path, what: str, command: str) -> Iterator[None]:
    import fcntl

    fh = lock.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"{what} is in use by {_holder(lock)}; wait for it to finish or choose another output"
            ) from None
        fh.seek(0)
        fh.truncate()
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        fh.write(json.dumps(info) + "\n")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the flock


def user_content(folder: Path) -> list[Path]:
    """Entries of ``folder`` (top level) that are not cvactive's own bookkeeping files."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name not in OUR_NAMES and not p.name.startswith(".cvactive"))


def _listing(paths: list[Path], limit: int = 5) -> str:
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in paths[:limit])
    return names + (f", ... ({len(paths)} in all)" if len(paths) > limit else "")


@dataclass
class OwnedDir:
    """A folder cvactive owns, with the files it wrote there (relative paths, in order)."""

    path: Path
    command: str
    files: list[str] = field(default_factory=list)

    @property
    def marker(self) -> Path:
        return self.path / OWNER_NAME

    def save(self) -> None:
        data = {"command": self.command, "files": self.files}
        write_json_atomic(self.marker, data, fsync=False, indent=None)

    def record(self, paths: Iterable[str | os.PathLike[str]], *, save: bool = True) -> None:
        """Note files this command wrote (inside the folder) so that a later cleanup may remove them."""
        known = set(self.files)
        root = self.path.resolve()
        for p in paths:
            rel = str(Path(p).resolve().relative_to(root))
            if rel not in known:
                self.files.append(rel)
                known.add(rel)
        if save:
            self.save()

    def owns(self, path: str | os.PathLike[str]) -> bool:
        try:
            rel = str(Path(path).resolve().relative_to(self.path.resolve()))
        except ValueError:
            return False
        return rel in set(self.files)

    def remove_owned(self) -> list[Path]:
        """Delete the recorded files (and folders they leave empty); user files stay. Return what went."""
        removed: list[Path] = []
        for rel in reversed(self.files):
            p = self.path / rel
            if p.is_file() or p.is_symlink():
                p.unlink()
                removed.append(p)
            parent = p.parent
            while parent != self.path and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        self.files = []
        self.save()
        return removed


def read_owner(folder: str | os.PathLike[str]) -> OwnedDir | None:
    """The ownership record of ``folder``, or ``None`` when cvactive did not mark it."""
    path = Path(folder)
    marker = path / OWNER_NAME
    if not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        return OwnedDir(path, str(data["command"]), [str(f) for f in data.get("files", [])])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OutputError(f"{marker} is unreadable ({err}); it is cvactive's record of what it wrote there") from err


def claim_dir(folder: str | os.PathLike[str], command: str, *, flag: str = "another --out") -> OwnedDir:
    """Take ``folder`` as ``command``'s output: create it, or accept it when empty or already ours.

    Raises:
        OutputError: the folder holds files and no record that ``command`` made it (the message lists
            them and says what to do), or it was made by another command.
    """
    path = Path(folder)
    owner = read_owner(path)
    if owner is not None:
        if owner.command != command:
            raise OutputError(f"{path} holds the output of cvactive {owner.command}, not {command}; choose {flag}")
        return owner
    content = user_content(path)
    if content:
        raise OutputError(
            f"{path} is not empty and was not written by cvactive {command} (holds {_listing(content)}); "
            f"choose {flag}, or an empty folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    owned = OwnedDir(path, command)
    owned.save()
    return owned


def move_aside(path: str | os.PathLike[str]) -> Path | None:
    """Rename ``path`` (a file or folder) to ``<name>.old-<timestamp>`` beside it; return the new name."""
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = p.with_name(f"{p.name}.old-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = p.with_name(f"{p.name}.old-{stamp}-{n}")
    os.replace(p, target)
    return target


def portable_text(text: str, root: str | os.PathLike[str] | None = None) -> str:
    """``text`` (a command line, a JSON document, a report) with this machine's locations taken out.

    Files the repository ships must not carry the absolute paths of the machine that wrote
    them: the repository's own location (``root``, default: the working directory, where the
    tools run from) becomes nothing (``/x/checkout/data/w.pt`` -> ``data/w.pt``), and the shared
    assets folder (:func:`cvactive.assets.assets_dir`) its path relative to the repository
    (``../shared/assets/...`` in the usual layout). A folder of the repository that is a symbolic
    link (a git worktree's ``data`` pointing into another checkout) counts as the repository's: its
    target becomes its name. Other text is left as it is.
    """
    from cvactive.assets import assets_dir

    base = Path(root) if root is not None else Path.cwd()
    assets = assets_dir()
    prefixes: list[tuple[str, str]] = []
    with contextlib.suppress(OSError):
        linked = [c for c in base.iterdir() if c.is_symlink() and c.is_dir()]
        prefixes += [(str(c.resolve()), c.name) for c in linked]
    if assets is not None:
        prefixes.append((str(assets.resolve()), os.path.relpath(assets.resolve(), base.resolve())))
        prefixes.append((str(assets), os.path.relpath(assets.resolve(), base.resolve())))
    prefixes += [(str(base.resolve()), "."), (str(base), ".")]
    for prefix, short in sorted(set(prefixes), key=lambda p: -len(p[0])):  # the longest (innermost) first
        text = text.replace(prefix + "/", "" if short == "." else short + "/")
    return _ABSOLUTE.sub(lambda m: _inside(m.group(0), base.resolve()), text)


#: An absolute path in running text (a JSON string, a command line): ``/`` then path characters.
_ABSOLUTE = re.compile(r"(?<![\w.~/-])/(?:[\w.+@-]+/)+[\w.+@-]*")


def _inside(path: str, base: Path) -> str:
    """``path`` relative to ``base`` when it resolves (its links followed) into ``base``; else as it is.

    Another checkout whose folders link into this one (a git worktree's ``data/``) wrote paths that
    are, on this machine, the repository's own files.
    """
    real = os.path.realpath(path)
    return os.path.relpath(real, base) if real.startswith(str(base) + os.sep) else path


def portable_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str:
    """One path as :func:`portable_text` records it (a relative path is returned as it is)."""
    return portable_text(str(path), root)
