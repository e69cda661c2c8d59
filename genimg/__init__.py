"""genimg: fast image generation and fair side-by-side model comparison."""

__version__ = "0.1.0"
