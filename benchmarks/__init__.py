"""jopt against optax, side by side in one process: step time, compile time, memory, bandwidth."""
