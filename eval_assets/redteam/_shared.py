"""XSTest (Röttger et al. 2024) files from the project's shared data sets (no package ships XSTest), read in
place and verified by sha256 like the data packages (`eval_assets/datapkgs.py`)."""

from __future__ import annotations

from pathlib import Path

from eval_assets.datapkgs import DataPackageError, file_sha256, shared_datasets_dir

#: sha256 of each XSTest file we read, by its path under the shared data sets directory.
XSTEST_FILES: dict[str, str] = {
    "xstest/xstest_prompts.csv": "11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a",
    "xstest/xstest_v2_completions_gpt4.csv": "71af323af8ecdec0efae23992317721441d2cfedddedeef3248f842f4e15c9ca",
    "xstest/xstest_v2_completions_llama2new.csv": (
        "6365cc55ce0a593c7ab8785853d02784be027d97199d4077912b4313cd010099"
    ),
}


def shared_file(relpath: str, root: Path | None = None) -> Path:
    """The verified path of a pinned shared data set file. Raises :class:`DataPackageError` saying what to do."""
    expected = XSTEST_FILES.get(relpath)
    if expected is None:
        raise DataPackageError(
            f"{relpath!r} is not a pinned shared data file; add its sha256 to XSTEST_FILES"
        )
    base = root or shared_datasets_dir()
    path = base / relpath
    if not path.is_file():
        raise DataPackageError(
            f"{path} not found: the shared data sets directory {base} has no {relpath}. Point "
            "EVALGATE_SHARED_DATASETS at the directory holding xstest/ (the project's shared/datasets)."
        )
    actual = file_sha256(path)
    if actual != expected:
        raise DataPackageError(f"{path} has sha256 {actual}, expected {expected}: a different or edited copy")
    return path
