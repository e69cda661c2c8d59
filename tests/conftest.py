"""Shared fixtures: tiny pipelines built from configs, pools over them, the app on a free port."""

from __future__ import annotations

import os

# Offline, quiet, no telemetry: set before any library import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("GENIMG_PRELOAD", "0")

import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from genimg.quiet import quiet_libraries  # noqa: E402

quiet_libraries()

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny random SD-shaped pipelines saved with save_pretrained (different weights)."""
    from genimg.models.tiny import build_tiny_sd_pipeline

    root = tmp_path_factory.mktemp("tiny-pipelines")
    return {name: build_tiny_sd_pipeline(root / name, seed=seed) for name, seed in (("tiny-a", 0), ("tiny-b", 1))}


@pytest.fixture(scope="session")
def tiny_catalog(tiny_dirs):
    from genimg.models.catalog import ModelSpec

    defaults = {"width": 32, "height": 32, "steps": 2, "guidance": 5.0}
    catalog = {
        name: ModelSpec(id=name, name=name.upper(), backend="diffusers", source=str(path),
                        tasks=("text-to-image", "image-to-image", "inpaint"), dtype="fp32",
                        default=(name == "tiny-a"), defaults=dict(defaults))
        for name, path in tiny_dirs.items()
    }
    catalog["missing-hub"] = ModelSpec(id="missing-hub", name="Missing hub model", backend="diffusers",
                                       source="genimg-tests/does-not-exist", tasks=("text-to-image",))
    return catalog


@pytest.fixture()
def pool(tiny_catalog):
    from genimg.models.pool import ModelPool

    return ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)


@pytest.fixture(scope="session")
def shared_pool(tiny_catalog):
    """One pool for the app tests (loading once, like the real server)."""
    from genimg.models.pool import ModelPool

    return ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(shared_pool):
    """The dashboard over the tiny pool, served in-process on a free loopback port."""
    from genimg.ui.app import build_app

    demo = build_app(shared_pool)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, show_error=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
