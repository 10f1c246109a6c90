import dagster as dg

#: One partition per registered checkpoint name; the CLI and the inbox sensor add them.
checkpoints = dg.DynamicPartitionsDefinition(name="checkpoints")
