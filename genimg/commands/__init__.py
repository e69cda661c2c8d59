"""CLI commands contributed by capabilities: each module has ``register(subparsers)``."""
