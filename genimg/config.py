"""Settings read from the environment, in one place.

Every knob a deployer can turn is an environment variable documented in the README.
Read once per call of :func:`settings` so tests can change the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


@dataclass(frozen=True)
class Limits:
    """What a single request may ask for. Hosted mode tightens these."""

    max_side: int = 2048          # pixels, width and height each
    max_pixels: int = 2048 * 2048  # width * height of one generated image
    max_steps: int = 200
    max_batch: int = 16
    max_prompt_chars: int = 4000
    max_models_compared: int = 4
    max_upload_bytes: int = 50 * 1024 * 1024
    max_image_pixels: int = 40_000_000  # decoded pixels of an uploaded image (decompression bombs)
    max_optimise_side: int = 1024  # longest side for per-pixel optimisation (Gatys style transfer)
    max_grid_cells: int = 64       # images in one X/Y/Z parameter grid (all Z pages together)


HOSTED_LIMITS = Limits(
    max_side=1024,
    max_pixels=1024 * 1024,
    max_steps=50,
    max_batch=4,
    max_prompt_chars=1000,
    max_upload_bytes=10 * 1024 * 1024,
    max_image_pixels=16_000_000,
    max_optimise_side=512,
    max_grid_cells=12,
)


@dataclass(frozen=True)
class Settings:
    """Deployment settings (see README, "Configuration")."""

    hosted: bool
    allow_custom_models: bool
    catalog_path: Path
    output_dir: Path
    device: str | None          # None: pick automatically
    dtype: str | None           # None: policy in genimg.models.device
    pool_budget_mb: int | None  # None: derived from the device's memory
    queue_size: int
    concurrency: int
    auth: str | None            # "user:password"
    limits: Limits
    # GPU fast path (genimg.models.diffusers_backend); None: the catalog entry's option, else the default.
    compile: str | None = None         # off | default | reduce-overhead | max-autotune
    compile_cpu: bool = False          # also compile on the CPU (minutes of compile time)
    channels_last: str | None = None   # on | off | auto (auto: on for CUDA)
    vae_tiling: str | None = None      # off | auto | a pixel count (width*height) above which the VAE tiles
    microbatch: int = 8                # most images one shared /generate call serves (1: no micro-batching)
    embedded_runtime: str = "onnx"     # onnx | torch: what runs the embedded diffusion UNets on the CPU
    max_rss_mb: int | None = None      # refuse new work above this resident memory; None: 80% of RAM
    # The database (arena battles and votes, shared previews): a SQLite file in data_dir unless db_url is set.
    data_dir: Path = PROJECT_ROOT / "data"
    db_url: str | None = None          # any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db
    arena_ttl_s: int = 3600            # an arena battle must be voted within this many seconds
    arena_rate_per_min: int = 0        # battles one session may start a minute; 0: no limit


def settings() -> Settings:
    """Return the current settings from the environment.

    Raises ValueError when a numeric variable is not a number.
    """
    hosted = _flag("GENIMG_HOSTED")
    budget = _int("GENIMG_POOL_BUDGET_MB", 0)
    return Settings(
        hosted=hosted,
        # A hosted demo never loads arbitrary hub ids or paths typed by a visitor.
        allow_custom_models=_flag("GENIMG_ALLOW_CUSTOM_MODELS") and not hosted,
        catalog_path=Path(os.environ.get("GENIMG_CATALOG") or ASSETS_DIR / "models.toml"),
        output_dir=Path(os.environ.get("GENIMG_OUTPUT_DIR") or PROJECT_ROOT / "outputs"),
        device=os.environ.get("GENIMG_DEVICE") or None,
        dtype=os.environ.get("GENIMG_DTYPE") or None,
        pool_budget_mb=budget or None,
        queue_size=_int("GENIMG_QUEUE_SIZE", 16 if hosted else 64),
        concurrency=_int("GENIMG_CONCURRENCY", 1),
        auth=os.environ.get("GENIMG_AUTH") or None,
        limits=HOSTED_LIMITS if hosted else Limits(),
        compile=os.environ.get("GENIMG_COMPILE", "").strip().lower() or None,
        compile_cpu=_flag("GENIMG_COMPILE_CPU"),
        channels_last=os.environ.get("GENIMG_CHANNELS_LAST", "").strip().lower() or None,
        vae_tiling=os.environ.get("GENIMG_VAE_TILING", "").strip().lower() or None,
        microbatch=_int("GENIMG_MICROBATCH", 8),
        embedded_runtime=os.environ.get("GENIMG_EMBEDDED_RUNTIME", "").strip().lower() or "onnx",
        max_rss_mb=_int("GENIMG_MAX_RSS_MB", 0) or None,
        data_dir=Path(os.environ.get("GENIMG_DATA_DIR") or "data").resolve(),
        db_url=os.environ.get("GENIMG_DB_URL", "").strip() or None,
        arena_ttl_s=_int("GENIMG_ARENA_TTL_S", 3600),
        # Hosted mode always rate-limits (a public demo); locally the owner votes as fast as they like.
        arena_rate_per_min=_int("GENIMG_ARENA_RATE", 10 if hosted else 0),
    )
