"""Node assembly: configuration, the supervisor that creates shared memory and runs the processes."""
