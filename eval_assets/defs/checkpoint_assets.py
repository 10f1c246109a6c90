"""``checkpoint_manifest``: what a checkpoint partition is, re-verified against its weights, tokenizer and
config."""

from typing import Any

import dagster as dg

from eval_assets.checkpoints import verify_manifest
from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.partitions import checkpoints
from resources.evalgate import EvalgateHome

#: 2: the manifest carries ``config_hash``, and the tokenizer and config are re-verified with the weights.
MANIFEST_VERSION = "2"


@dg.asset(
    partitions_def=checkpoints,
    code_version=MANIFEST_VERSION,
    automation_condition=evaluate_when_new_or_changed(),
    group_name="checkpoints",
    kinds={"python"},
    description="The registered checkpoint: content hashes of its weights, tokenizer and config, format, "
    "backend, source; re-verified against the files on every materialization.",
)
def checkpoint_manifest(
    context: dg.AssetExecutionContext, evalgate: EvalgateHome
) -> dg.Output[dict[str, Any]]:
    manifest = evalgate.registry().get(context.partition_key)
    verify_manifest(manifest)
    value = manifest.model_dump(mode="json")
    return dg.Output(
        value,
        data_version=dg.DataVersion(manifest.identity.removeprefix("sha256:")[:32]),
        metadata={
            "model_hash": manifest.model_hash,
            "tokenizer_hash": manifest.tokenizer_hash,
            "config_hash": manifest.config_hash or "",
            "identity": manifest.identity,
            "format": manifest.format,
            "backend": manifest.backend,
            "path": manifest.path,
            "source": manifest.source,
        },
    )
