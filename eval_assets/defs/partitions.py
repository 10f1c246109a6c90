import dagster as dg

#: One partition per registered checkpoint name; the CLI and the inbox sensor add them.
CHECKPOINTS = "checkpoints"
checkpoints = dg.DynamicPartitionsDefinition(name=CHECKPOINTS)
