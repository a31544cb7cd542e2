"""The DataFlowKernel: task graph, dependency resolution, launch, retries, memo lookup, events."""
