"""The interpreter as the sandbox sees it: its executable and standard library only, at a neutral path.

Binding the interpreter's prefix would show programs everything installed there (site-packages, console
scripts) and, through ``/proc/self/mountinfo`` (a bind mount's root names its source path), where it lives on
the host. Instead the interpreter's own files are staged once into a root-owned cache directory
(``/var/cache/evalgate-sandbox`` as root; the caller's runtime or temporary directory otherwise), hard-linked
where the filesystem allows and copied where not, and that directory is bound at :data:`SANDBOX_PREFIX`:

- ``bin/pythonX.Y`` (with ``python3`` and ``python`` links to it);
- ``lib/pythonX.Y``: the standard library with ``lib-dynload`` and the compiled ``__pycache__`` files, without
  ``site-packages``/``dist-packages``, the regression-test package ``test``, ``idlelib``, ``turtledemo``,
  ``ensurepip`` (bundled pip wheels) and ``config-*`` (static library and makefile for building extensions);
- ``lib/libpythonX.Y*.so*`` when the executable links against a shared libpython outside ``/usr`` (then
  ``LD_LIBRARY_PATH`` points at ``SANDBOX_PREFIX/lib``).

Python finds its prefix from the executable's location, so inside the sandbox ``sys.prefix`` is
:data:`SANDBOX_PREFIX`. The stage is keyed by the identity (path, inode, size, mtime) of the executable, the
shared library and the standard library, so a reinstalled interpreter is staged afresh; a stage is built in a
temporary directory and renamed into place, so concurrent workers never see half of one.

Not hidden: ``/usr`` is bound whole (the C library and the system's shared libraries live there), so an
interpreter installed under ``/usr`` keeps its distribution's ``dist-packages`` on the filesystem (never on
``sys.path``: programs run with ``-I -S``); and the interpreter's build metadata (``sysconfig``, the binary's
``RUNPATH``) still names the prefix it was built for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Where the staged interpreter appears inside every sandbox.
SANDBOX_PREFIX = "/opt/python"
#: Bump when the staged layout changes (part of the stage key, and of the sandbox recipe version).
STAGE_VERSION = "1"
#: Top-level entries of the standard library directory that are not staged.
EXCLUDED = ("site-packages", "dist-packages", "test", "idlelib", "turtledemo", "ensurepip")
EXCLUDED_GLOBS = ("config-*",)
ROOT_CACHE = Path("/var/cache/evalgate-sandbox")


class RuntimeUnavailableError(RuntimeError):
    """The interpreter's files cannot be found or staged."""


@dataclass(frozen=True)
class StagedPython:
    host_dir: Path  # the stage on the host (bound read-only at SANDBOX_PREFIX)
    exe_name: str  # e.g. python3.11
    shared_lib: bool  # whether LD_LIBRARY_PATH must point at SANDBOX_PREFIX/lib

    @property
    def executable(self) -> str:
        return f"{SANDBOX_PREFIX}/bin/{self.exe_name}"

    @property
    def bin_dir(self) -> str:
        return f"{SANDBOX_PREFIX}/bin"

    @property
    def lib_dir(self) -> str:
        return f"{SANDBOX_PREFIX}/lib"


@dataclass(frozen=True)
class _Layout:
    exe: Path
    version: str  # "3.11"
    stdlib: Path
    shared_libs: tuple[Path, ...]


def _layout(interpreter: Path) -> _Layout:
    exe = interpreter.resolve()
    prefix = exe.parent.parent
    match = re.fullmatch(r"python(\d+\.\d+)", exe.name)
    names = [f"python{match.group(1)}"] if match else []
    candidates = [prefix / lib / name for lib in ("lib", "lib64") for name in names]
    if not candidates:
        candidates = sorted(
            p.parent for lib in ("lib", "lib64") for p in (prefix / lib).glob("python3.*/os.py")
        )
    found = [c for c in candidates if (c / "os.py").is_file()]
    if not found:
        raise RuntimeUnavailableError(f"cannot find the standard library of {exe} under {prefix}/lib")
    stdlib = found[0].resolve()
    version = stdlib.name.removeprefix("python")
    shared: list[Path] = []
    if prefix != Path("/usr"):
        for lib in ("lib", "lib64"):
            shared += sorted(p for p in (prefix / lib).glob(f"libpython{version}*.so*") if p.is_file())
    return _Layout(exe, version, stdlib, tuple(shared))


def _identity(path: Path) -> list[object]:
    st = path.stat()
    return [str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _key(layout: _Layout) -> str:
    parts = [
        STAGE_VERSION,
        _identity(layout.exe),
        _identity(layout.stdlib),
        _identity(layout.stdlib / "os.py"),
    ]
    dynload = layout.stdlib / "lib-dynload"
    if dynload.is_dir():
        parts.append(_identity(dynload))
    parts += [_identity(p) for p in layout.shared_libs]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def _place(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same filesystem, allowed), else copy it with its mode."""
    src = src.resolve(strict=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=True)


def _copy_tree(src: Path, dst: Path, *, top: bool) -> None:
    dst.mkdir(mode=0o755)
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        if top and (entry.name in EXCLUDED or any(Path(entry.name).match(g) for g in EXCLUDED_GLOBS)):
            continue
        path = Path(entry.path)
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue  # a dangling or looping link
        if target.is_dir():
            if entry.is_symlink():
                continue  # no directory links: they could lead anywhere on the host
            _copy_tree(path, dst / entry.name, top=False)
        elif target.is_file():
            _place(target, dst / entry.name)


def _safe_dir(path: Path, mode: int) -> Path:
    """``path`` as a directory we own, not a link, not writable by others (created if missing)."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise RuntimeUnavailableError(f"{path} must be a directory owned by us and not group/world-writable")
    return path


def default_cache_root() -> Path:
    if os.geteuid() == 0:
        return ROOT_CACHE
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir() and os.access(runtime, os.W_OK):
        return Path(runtime) / "evalgate-sandbox"
    return Path(tempfile.gettempdir()) / f"evalgate-sandbox-{os.geteuid()}"


def stage_interpreter(interpreter: Path, cache_root: Path | None = None) -> StagedPython:
    """The staged copy of ``interpreter`` (built on first use, then reused).

    Raises:
        RuntimeUnavailableError: the standard library is not found, or the cache directory is unsafe.
    """
    layout = _layout(interpreter)
    root = _safe_dir(cache_root if cache_root is not None else default_cache_root(), 0o755)
    exe_name = f"python{layout.version}"
    final = root / f"python{layout.version}-{_key(layout)}"
    if not final.is_dir():
        building = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
        try:
            building.chmod(0o755)
            (building / "bin").mkdir(mode=0o755)
            _place(layout.exe, building / "bin" / exe_name)
            for alias in ("python3", "python"):
                (building / "bin" / alias).symlink_to(exe_name)
            (building / "lib").mkdir(mode=0o755)
            _copy_tree(layout.stdlib, building / "lib" / exe_name, top=True)
            for lib in layout.shared_libs:
                _place(lib, building / "lib" / lib.name)
            try:
                building.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
        except OSError as exc:
            raise RuntimeUnavailableError(f"cannot stage {layout.exe} in {root}: {exc}") from exc
        finally:
            if building.exists():
                with contextlib.suppress(OSError):
                    shutil.rmtree(building)
    return StagedPython(final, exe_name, bool(layout.shared_libs))
