"""The HighThroughputExecutor: an interchange process brokering tasks to worker pools."""
