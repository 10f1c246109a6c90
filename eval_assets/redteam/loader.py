"""The red-team loaders: ``redteam_harmful`` (behaviours × jailbreak wrappers) and ``redteam_benign`` (the
over-refusal prompts). Items are keyed ``<behaviour id>@<wrapper id>`` (benign: ``<prompt id>``), and the prompt
is the rendered text alone, so adding wrappers or behaviours (also from a user's own files) makes new items with
new prompt hashes while every existing item keeps its prompt hash, and the prediction cache runs only the new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eval_assets.kinds._registry import register_loader
from eval_assets.kinds._types import LoadContext, Loader
from eval_assets.redteam.benign import project_prompts
from eval_assets.redteam.sources import (
    HARMFUL_SOURCES,
    Behaviour,
    check_unique_ids,
    donotanswer,
    load_user_behaviours,
    xstest,
)
from eval_assets.redteam.wrappers import (
    WRAPPERS_VERSION,
    Wrapper,
    builtin_wrappers,
    check_unique,
    load_user_wrappers,
)
from eval_assets.suites.items import GenerationItem, Item

if TYPE_CHECKING:
    from eval_assets.suites.spec import SuiteSpec

HARMFUL = "refusal"  # gold of a harmful item: the model must refuse
BENIGN = "compliance"  # gold of a benign item: the model must answer
BENIGN_SOURCES = ("xstest_safe", "evalgate_benign")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    behaviours_file: str | None = Field(
        default=None, description="a user's own CSV/JSONL with id, prompt, category (relative to the spec)"
    )


class HarmfulOptions(_Options):
    sources: tuple[str, ...] = Field(default=tuple(HARMFUL_SOURCES), description="built-in behaviour sources")
    wrappers: tuple[str, ...] | Literal["all"] = Field(
        default="all", description="built-in wrapper ids, or all"
    )
    wrappers_file: str | None = Field(default=None, description="a user's own wrappers (YAML list)")
    donotanswer_per_area: int = Field(default=20, gt=0, le=300)

    @field_validator("sources")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(HARMFUL_SOURCES))
        if unknown:
            raise ValueError(f"unknown sources {unknown}; choose from {', '.join(HARMFUL_SOURCES)}")
        return value


class BenignOptions(_Options):
    sources: tuple[str, ...] = Field(default=BENIGN_SOURCES)

    @field_validator("sources")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(BENIGN_SOURCES))
        if unknown:
            raise ValueError(f"unknown sources {unknown}; choose from {', '.join(BENIGN_SOURCES)}")
        return value


def _path(relative: str, context: LoadContext) -> Path:
    path = Path(relative).expanduser()
    if not path.is_absolute() and context.spec_dir is not None:
        path = context.spec_dir / path
    return path.resolve()


def _item(spec: SuiteSpec, item_id: str, prompt: str, gold: str, meta: dict[str, str]) -> GenerationItem:
    messages: list[tuple[str, str]] = [("system", spec.template.system)] if spec.template.system else []
    messages.append(("user", prompt))
    return GenerationItem(item_id=item_id, messages=tuple(messages), gold=gold, meta=meta)


def harmful_behaviours(options: HarmfulOptions, context: LoadContext) -> list[Behaviour]:
    behaviours: list[Behaviour] = []
    for source in options.sources:
        if source == "donotanswer":
            behaviours.extend(donotanswer(context.data_root, options.donotanswer_per_area))
        else:
            behaviours.extend(HARMFUL_SOURCES[source](context.data_root))
    if options.behaviours_file:
        behaviours.extend(load_user_behaviours(_path(options.behaviours_file, context)))
    check_unique_ids(behaviours)
    return behaviours


def selected_wrappers(options: HarmfulOptions, context: LoadContext) -> list[Wrapper]:
    builtin = builtin_wrappers(context.data_root)
    if options.wrappers != "all":
        known = {w.id: w for w in builtin}
        unknown = sorted(set(options.wrappers) - set(known))
        if unknown:
            raise ValueError(f"data.wrappers: unknown wrapper ids {unknown}; built-in: {', '.join(known)}")
        builtin = [known[w] for w in options.wrappers]
    wrappers = builtin + (
        load_user_wrappers(_path(options.wrappers_file, context)) if options.wrappers_file else []
    )
    check_unique(wrappers)
    return wrappers


def cross(spec: SuiteSpec, behaviours: Sequence[Behaviour], wrappers: Sequence[Wrapper]) -> list[Item]:
    """Every behaviour under every wrapper; the item's meta carries what the metrics group by."""
    return [
        _item(spec, f"{b.id}@{w.id}", w.render(b.prompt), HARMFUL,
              {"source": b.source, "category": b.category, "family": w.family, "wrapper": w.id,
               "behaviour": b.id, "wrapper_version": str(w.version), "request": b.prompt})
        for b in behaviours for w in wrappers
    ]  # fmt: skip


def load_harmful(spec: SuiteSpec, options: HarmfulOptions | None, context: LoadContext) -> list[Item]:
    options = options or HarmfulOptions()
    return cross(spec, harmful_behaviours(options, context), selected_wrappers(options, context))


def load_benign(spec: SuiteSpec, options: BenignOptions | None, context: LoadContext) -> list[Item]:
    options = options or BenignOptions()
    prompts: list[Behaviour] = []
    for source in options.sources:
        prompts.extend(xstest("safe") if source == "xstest_safe" else project_prompts())
    if options.behaviours_file:
        prompts.extend(load_user_behaviours(_path(options.behaviours_file, context)))
    check_unique_ids(prompts)
    return [_item(spec, p.id, p.prompt, BENIGN, {"source": p.source, "category": p.category, "family": "none", "request": p.prompt})
            for p in prompts]  # fmt: skip


def _fingerprint(_options: object) -> str:
    return f"wrappers-v{WRAPPERS_VERSION}"


HARMFUL_LOADER = register_loader(
    Loader(
        name="redteam_harmful",
        kinds=frozenset({"refusal_harmful"}),
        load=load_harmful,
        description="harmful behaviours (HarmBench, AdvBench, StrongREJECT, Do-Not-Answer, XSTest unsafe) × "
        "jailbreak wrappers in families",
        options=HarmfulOptions,
        fingerprint=_fingerprint,
    )
)
BENIGN_LOADER = register_loader(
    Loader(
        name="redteam_benign",
        kinds=frozenset({"refusal_benign"}),
        load=load_benign,
        description="benign but edgy prompts (XSTest safe 250 + evalgate's own), for over-refusal",
        options=BenignOptions,
    )
)
