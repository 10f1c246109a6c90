"""The labelling page: a small Starlette app that shows one sampled item at a time and stores each label in
the ``human_labels`` Delta table before it acknowledges it.

* ``GET /``: the page (HTML, CSS and JS inline: it works offline). Model text is inserted with
  ``textContent``, never as HTML, so an answer holding markup or script shows as text.
* ``GET /api/next?rater=R``: the rater's next unlabelled item of the sample (ordered by checkpoint, suite and
  the sample's seeded rank), its labels and keys, the side each answer is shown on, a fresh ``submit_key``,
  and progress. Nothing of the rater's state lives in the browser: a reload asks the table again.
* ``POST /api/label``: ``{checkpoint, suite, item_id, rater, choice, submit_key}``. For pairwise items
  ``choice`` is the side (``left``/``right``/``tie``), which the server turns into candidate/opponent from the
  order it showed (derived from the rater and item, so a client cannot misreport it). Repeating a
  ``submit_key`` stores nothing more (``"stored": false``).
* ``GET /api/labels.csv`` and ``POST /api/labels.csv``: export and import (see ``HumanEvalStore.import_csv``).
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from pathlib import Path
from typing import Any

import polars as pl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from eval_assets.human_eval import HumanEvalStore, check_label, latest_labels

PAGE = Path(__file__).with_name("page.html")
#: The keys that pick each label, by kind (the page shows them).
KEYS: dict[str, list[tuple[str, str, str]]] = {
    # (key, choice sent, what it means on screen)
    "pairwise": [("1", "left", "left is better"), ("2", "right", "right is better"), ("3", "tie", "tie")],
    "refusal": [("1", "compliance", "complied"), ("2", "refusal", "refused"), ("3", "partial", "partial")],
    "generation": [("1", "correct", "correct"), ("2", "incorrect", "incorrect")],
}


def shown_order(rater: str, checkpoint: str, suite: str, item_id: str) -> tuple[str, str]:
    """Which answer of a pairwise item is on the left for this rater: seeded by rater and item, so it is
    random across items and raters but the same after a reload."""
    digest = hashlib.sha256(f"{rater}\x1f{checkpoint}\x1f{suite}\x1f{item_id}".encode()).digest()
    return ("candidate", "opponent") if digest[0] % 2 == 0 else ("opponent", "candidate")


def _kind_of(kind: str) -> str:
    return kind if kind in KEYS else "generation"


class Labelling:
    """The state behind the app: the store and the checkpoint whose sample is labelled (None: all)."""

    def __init__(self, store: HumanEvalStore, checkpoint: str | None = None) -> None:
        self.store = store
        self.checkpoint = checkpoint

    def sample(self) -> pl.DataFrame:
        sample = self.store.read_sample(self.checkpoint)
        if sample.height == 0:
            return sample
        return sample.sort(["checkpoint", "suite", "rank_key"])

    def next_item(self, rater: str) -> dict[str, Any]:
        sample = self.sample()
        total = sample.height
        labels = self.store.read_labels(self.checkpoint)
        done: set[tuple[str, str, str]] = set()
        if labels.height:
            mine = latest_labels(labels.filter(pl.col("rater") == rater))
            done = set(mine.select("checkpoint", "suite", "item_id").iter_rows())
        progress = {"done": sum(1 for r in sample.select("checkpoint", "suite", "item_id").iter_rows() if r in done),
                    "total": total}  # fmt: skip
        for row in sample.iter_rows(named=True):
            if (row["checkpoint"], row["suite"], row["item_id"]) in done:
                continue
            return {"item": self._shown(row, rater), "progress": progress}
        return {"item": None, "progress": progress}

    def _shown(self, row: dict[str, Any], rater: str) -> dict[str, Any]:
        kind = _kind_of(row["kind"])
        shown: dict[str, Any] = {
            "checkpoint": row["checkpoint"], "suite": row["suite"], "item_id": row["item_id"], "kind": kind,
            "prompt": row.get("prompt") or "", "stratum": row["stratum"],
            "keys": [{"key": k, "choice": c, "means": m} for k, c, m in KEYS[kind]],
            "submit_key": uuid.uuid4().hex,
        }  # fmt: skip
        if kind == "pairwise":
            order = shown_order(rater, row["checkpoint"], row["suite"], row["item_id"])
            texts = {"candidate": row.get("answer") or "", "opponent": row.get("opponent_answer") or ""}
            shown["answers"] = [texts[order[0]], texts[order[1]]]
        else:
            shown["answers"] = [row.get("answer") or ""]
            if kind == "generation":
                shown["reference"] = row.get("reference") or ""
        return shown

    def label(self, body: dict[str, Any]) -> dict[str, Any]:
        for field in ("checkpoint", "suite", "item_id", "rater", "choice", "submit_key"):
            if not isinstance(body.get(field), str) or not body[field].strip():
                raise ValueError(f"field `{field}` is missing or empty")
        rater = body["rater"].strip()
        matches = self.store.read_sample(body["checkpoint"]).filter(
            (pl.col("suite") == body["suite"]) & (pl.col("item_id") == body["item_id"])
        )
        if matches.height == 0:
            raise ValueError(f"{body['checkpoint']}/{body['suite']}/{body['item_id']} is not in the sample")
        kind = _kind_of(matches["kind"][0])
        choices = {c for _, c, _ in KEYS[kind]}
        if body["choice"] not in choices:
            raise ValueError(
                f"field `choice`: {body['choice']!r} is not one of {sorted(choices)} for a {kind} item"
            )
        order = ""
        label = body["choice"]
        if kind == "pairwise":
            sides = shown_order(rater, body["checkpoint"], body["suite"], body["item_id"])
            order = ",".join(sides)
            label = {"left": sides[0], "right": sides[1], "tie": "tie"}[body["choice"]]
        check_label(kind, label, f"{body['checkpoint']}/{body['suite']}/{body['item_id']}")
        stored = self.store.add_label(
            checkpoint=body["checkpoint"], suite=body["suite"], item_id=body["item_id"], kind=kind, rater=rater,
            label=label, shown_order=order, submit_key=body["submit_key"].strip(),
        )  # fmt: skip
        return {"stored": stored, "label": label, "shown_order": order}


def build_app(store: HumanEvalStore, checkpoint: str | None = None, *, default_rater: str = "") -> Starlette:
    state = Labelling(store, checkpoint)
    page = PAGE.read_text().replace("__DEFAULT_RATER__", default_rater.replace('"', ""))

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def next_item(request: Request) -> Response:
        rater = request.query_params.get("rater", "").strip()
        if not rater:
            return JSONResponse(
                {"error": "query parameter `rater` is missing: enter your name"}, status_code=400
            )
        return JSONResponse(state.next_item(rater))

    async def label(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        try:
            result = state.label(body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result | state.next_item(body["rater"].strip()))

    async def export_csv(request: Request) -> Response:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "labels.csv"
            store.export_csv(path, checkpoint)
            text = path.read_text()
        return Response(text, media_type="text/csv",
                        headers={"content-disposition": 'attachment; filename="human_labels.csv"'})  # fmt: skip

    async def import_csv(request: Request) -> Response:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.csv"
            path.write_bytes(await request.body())
            try:
                read, inserted = store.import_csv(path)
            except ValueError as exc:
                return JSONResponse({"error": str(exc).replace(str(path), "upload.csv")}, status_code=400)
        return JSONResponse({"read": read, "inserted": inserted})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/next", next_item),
            Route("/api/label", label, methods=["POST"]),
            Route("/api/labels.csv", export_csv),
            Route("/api/labels.csv", import_csv, methods=["POST"]),
        ]
    )
