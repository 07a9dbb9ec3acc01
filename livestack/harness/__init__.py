"""Runtime Execution Harness: the pinned process that runs the Core Runtime over the rings."""
