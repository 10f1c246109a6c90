import dagster as dg

#: One partition per registered checkpoint name; the CLI and the inbox sensor add them.
CHECKPOINTS = "checkpoints"
checkpoints = dg.DynamicPartitionsDefinition(name=CHECKPOINTS)

#: The ``production`` asset's key: comparisons (and stages that read production) are its downstreams.
PRODUCTION = dg.AssetKey("production")
