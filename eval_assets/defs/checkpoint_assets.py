"""``checkpoint_manifest``: what a checkpoint partition is, re-verified against its weights."""


from pathlib import Path
from typing import Any

import dagster as dg

from eval_assets.checkpoints import CheckpointError
from eval_assets.defs.automation import evaluate_when_new_or_changed
from eval_assets.defs.partitions import checkpoints
from eval_assets.hashing import model_hash
from resources.evalgate import EvalgateHome

MANIFEST_VERSION = "1"


@dg.asset(
    partitions_def=checkpoints,
    code_version=MANIFEST_VERSION,
    automation_condition=evaluate_when_new_or_changed(),
    group_name="checkpoints",
    kinds={"python"},
    description="The registered checkpoint: weights' content hash, tokenizer hash, format, backend, source.",
)
def checkpoint_manifest(context: dg.AssetExecutionContext, evalgate: EvalgateHome) -> dg.Output[dict[str, Any]]:
    manifest = evalgate.registry().get(context.partition_key)
    actual = model_hash(Path(manifest.path))
    if actual != manifest.model_hash:
        raise CheckpointError(
            f"checkpoint {manifest.name}: weights at {manifest.path} now hash to {actual}, registered as "
            f"{manifest.model_hash}. Weights under a registered name must not change; register the new weights "
            "under a new name."
        )
    value = manifest.model_dump(mode="json")
    return dg.Output(
        value,
        data_version=dg.DataVersion(f"{manifest.model_hash}|{manifest.tokenizer_hash}"),
        metadata={
            "model_hash": manifest.model_hash,
            "tokenizer_hash": manifest.tokenizer_hash,
            "format": manifest.format,
            "backend": manifest.backend,
            "path": manifest.path,
            "source": manifest.source,
        },
    )
