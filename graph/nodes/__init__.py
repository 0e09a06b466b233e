"""One module per node. Each exposes ``make(services)`` returning ``async (state, runtime)``."""
