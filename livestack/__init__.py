"""livestack: a low-latency live trading stack (Cython/numpy engine, shared-memory IPC)."""

__version__ = "0.1.0"
