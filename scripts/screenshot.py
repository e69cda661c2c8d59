"""Take the README screenshot: serve the dashboard, generate once in a real browser, save a PNG.

    .venv/bin/python scripts/screenshot.py                      # the real catalog (assets/models.toml)
    GENIMG_CATALOG=path/to/models.toml .venv/bin/python scripts/screenshot.py
    .venv/bin/python scripts/screenshot.py --tiny               # two tiny random pipelines (plumbing only)

Works offline: the hub is switched off, the browser is Debian's chromium (/usr/bin/chromium,
never ``playwright install``), and the app is served on a free loopback port in this process.
"""

from __future__ import annotations

import argparse
import os
import sys

# Offline, quiet, no telemetry: set before any library import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import socket  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
DEFAULT_PROMPT = "a large red star to the left of a small blue circle on a white background"  # in the embedded models' grammar


def tiny_catalog(folder: Path, size: int) -> Path:
    """Build two tiny random pipelines under ``folder`` and write a models.toml over them; return its path."""
    from genimg.models.tiny import build_tiny_sd_pipeline

    entries = []
    for i, model_id in enumerate(("tiny-a", "tiny-b")):
        path = build_tiny_sd_pipeline(folder / model_id, seed=i)
        entries.append(
            f'[[model]]\nid = "{model_id}"\nname = "{model_id.upper()}"\nbackend = "diffusers"\n'
            f'source = "{path.as_posix()}"\ntasks = ["text-to-image", "image-to-image", "inpaint"]\n'
            f'dtype = "fp32"\ndefault = {"true" if i == 0 else "false"}\n'
            f'[model.defaults]\nwidth = {size}\nheight = {size}\nsteps = 2\nguidance = 5.0\n')
    catalog = folder / "models.toml"
    catalog.write_text("\n".join(entries), encoding="utf-8")
    return catalog


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def take(url: str, out: Path, prompt: str, images: int, defaults: dict, width: int, height: int,
         timeout_s: float) -> None:
    """Open ``url``, generate ``images`` images of ``prompt`` on the Generate tab, screenshot the viewport.

    The Settings fields start from the default model's catalog defaults; only the image
    count is changed (``images`` != 1).
    """
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#generate-prompt textarea").fill(prompt)
            if images != 1:
                settings = page.get_by_text("Settings (filled with the model's defaults)")
                settings.click()
                page.get_by_label("Images", exact=True).fill(str(images))
                settings.click()  # fold it again: the picture is about the result
            page.locator("#generate-button").click()
            gallery = page.locator("#generate-gallery img")
            error = page.get_by_role("status").filter(has_text="Error")  # Gradio's error toast
            expect(gallery.nth(images - 1).or_(error).first).to_be_visible(timeout=timeout_s * 1000)
            if error.count():
                page.screenshot(path=str(out.with_suffix(".error.png")))
                texts = [" ".join(t.replace("×", " ").split()) for t in error.all_inner_texts()]
                raise RuntimeError(f"generation failed ({out.with_suffix('.error.png')}): {' | '.join(texts)}")
            expect(gallery).to_have_count(images)
            expect(page.locator("#generate-timing")).to_contain_text("steps/s", timeout=timeout_s * 1000)
            for image in gallery.all():
                page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
            page.mouse.move(0, 0)  # no hover effects in the picture
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(500)  # let the progress bar fade out
            out.parent.mkdir(parents=True, exist_ok=True)
            # The viewport, stretched down to the timing line under the gallery (the point of the app).
            timing = page.locator("#generate-timing").bounding_box()
            bottom = max(height, int(timing["y"] + timing["height"] + 12)) if timing else height
            page.screenshot(path=str(out), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": bottom})
        finally:
            browser.close()


def shrink_png(path: Path, max_bytes: int) -> None:
    """Re-save ``path`` as an optimised palette PNG when it is over ``max_bytes`` (UI text survives 256 colours)."""
    from PIL import Image

    if path.stat().st_size <= max_bytes:
        return
    rgb = Image.open(path).convert("RGB")
    for colors in (256, 128, 64):
        rgb.quantize(colors=colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
            path, optimize=True)
        if path.stat().st_size <= max_bytes:
            return
    print(f"warning: {path} is {path.stat().st_size // 1024} KB, over {max_bytes // 1024} KB", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--images", type=int, default=4, help="images to generate (the gallery shows up to 4 a row)")
    ap.add_argument("--max-kb", type=int, default=300, help="re-save as a palette PNG when larger than this")
    ap.add_argument("--tiny", action="store_true",
                    help="serve two tiny random-weight pipelines instead of the catalog (their images are noise)")
    ap.add_argument("--tiny-size", type=int, default=256, help="image size for --tiny (pixels)")
    ap.add_argument("--viewport", default="1280x800", help="WIDTHxHEIGHT")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the images")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: apt-get install chromium", file=sys.stderr)
        return 2
    width, height = (int(v) for v in args.viewport.lower().split("x"))
    os.environ.setdefault("GENIMG_PRELOAD", "0")

    from genimg.quiet import quiet_libraries

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="genimg-screenshot-") as tmp:
        if args.tiny:
            os.environ["GENIMG_CATALOG"] = str(tiny_catalog(Path(tmp), args.tiny_size))
        # The catalog comes from GENIMG_CATALOG, else assets/models.toml (read by the pool).
        from genimg.models.catalog import default_model
        from genimg.models.pool import ModelPool, set_pool
        from genimg.ui.app import CSS, build_app

        pool = ModelPool()
        model_id = default_model(pool.catalog)
        if model_id is None:
            print("the catalog has no text-to-image model", file=sys.stderr)
            return 2
        defaults = dict(pool.catalog[model_id].defaults)
        set_pool(pool)
        demo = build_app(pool)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    show_error=True, css=CSS)
        try:
            take(f"http://127.0.0.1:{port}/", args.out, args.prompt, args.images, defaults, width, height,
                 args.timeout)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        finally:
            demo.close()
            set_pool(None)
    shrink_png(args.out, args.max_kb * 1024)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
