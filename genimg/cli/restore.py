"""``python -m genimg restore``: degrade → restore → score from the command line, one image or a folder.

    python -m genimg restore --method nlm --degrade noise:25 --input photo.png --out restored.png
    python -m genimg restore --method nlm,waifu2x-noise3 --degrade "noise:25" --input photos/ --out results/
    python -m genimg restore --method realesrgan-x4plus --input small.png --out big.png     # no degradation
    python -m genimg restore --list          # methods and whether each can run here
    python -m genimg restore --bench         # bench_restore() over the bundled examples

A folder input writes every output plus ``restore.csv`` (one row per image and method).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from genimg.errors import GenimgError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
CSV_FIELDS = ("image", "method", "task", "degradation", "seed", "psnr", "ssim", "brisque", "seconds", "load_s",
              "output", "error")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``restore`` command to the CLI's subparsers; returns its parser."""
    p = subparsers.add_parser("restore", help="degrade an image on purpose, restore it with several methods, score them",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", "-m", action="append", default=[],
                   help="catalog id(s) of restoration methods; repeat or comma-separate (see --list)")
    p.add_argument("--degrade", "-d", default=None,
                   help='degradation spec, e.g. "noise:25,blur:2,jpeg:20,down:4" (default: none, restore the input as is)')
    p.add_argument("--input", "-i", type=Path, default=None, help="an image, or a folder of images (batch)")
    p.add_argument("--out", "-o", type=Path, default=None,
                   help="output image (one method, one input) or folder (default: GENIMG_OUTPUT_DIR/restore)")
    p.add_argument("--mask", type=Path, default=None, help="hole mask image (white/opaque = fill) for inpainting / mask:user")
    p.add_argument("--scale", type=int, default=None, help="upscale factor when not degrading (default: the method's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the degradation's random draws (default 0)")
    p.add_argument("--prompt", default="", help="text guidance for diffusion methods")
    p.add_argument("--list", action="store_true", help="list the restoration methods and whether each can run here")
    p.add_argument("--bench", action="store_true", help="run bench_restore() over the bundled examples")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_restore)
    return p


def _methods(args: argparse.Namespace) -> list[str]:
    ids = [m.strip() for text in args.method for m in text.split(",") if m.strip()]
    if not ids:
        raise GenimgError("no method given: pass --method (python -m genimg restore --list shows them)")
    return ids


def _list(args: argparse.Namespace) -> dict[str, Any]:
    from genimg.models.pool import get_pool
    from genimg.restore.methods import method_task, restore_methods

    pool = get_pool()
    rows = []
    for spec in restore_methods(pool):
        ok, reason = pool.availability(spec.id)
        rows.append({"id": spec.id, "name": spec.name, "task": method_task(spec), "backend": spec.backend,
                     "available": ok, "reason": reason})
    if not args.json:
        for row in rows:
            print(f"{row['id']:<26} {row['task']:<8} {'yes' if row['available'] else 'no ':<4} {row['backend']:<10} "
                  f"{row['reason']}")
    return {"command": "restore", "methods": rows}


def _bench(args: argparse.Namespace) -> dict[str, Any]:
    from genimg.bench.restore import bench_restore, format_bench

    report = bench_restore(progress=None if (args.quiet or args.json) else lambda text: print(text, file=sys.stderr))
    if not args.json:
        print(format_bench(report))
    return {"command": "restore", "bench": report}


def _record(result: Any, method: Any, image: Any) -> dict[str, Any]:
    record = result.record(method)
    record.update({"width": image.width, "height": image.height,
                   "model": {"id": method.method, "name": method.name, "backend": method.backend}})
    return record


def _save(image: Any, record: dict[str, Any], path: Path) -> Path:
    from genimg.outputs import save_png

    if path.suffix.lower() == ".png":
        return save_png(image, record, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg") and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    try:
        image.save(path)
    except (ValueError, OSError) as exc:
        raise GenimgError(f"cannot write {path}: {exc} (use .png)") from None
    return path


def _one(path: Path, args: argparse.Namespace, methods: list[str], out: Path, single_file: bool,
         mask: Any, progress: Any) -> dict[str, Any]:
    from genimg.tasks.restore import restore

    result = restore(path, methods, degrade=args.degrade, seed=args.seed, progress=progress, mask=mask,
                     scale=args.scale, prompt=args.prompt)
    outputs: dict[str, str] = {}
    for method in result.outputs:
        if method.image is None:
            continue
        target = out if single_file else out / f"{path.stem}-{method.method}.png"
        outputs[method.method] = str(_save(method.image, _record(result, method, method.image), target))
    entry: dict[str, Any] = {"input": str(path), "outputs": outputs, "table": result.table(), "best": result.best(),
                             "degradation": result.degradation, "metrics": result.metrics}
    if result.degradation is not None:
        folder = out.parent if single_file else out
        degraded_path = folder / f"{path.stem}-degraded.png"
        entry["degraded"] = str(_save(result.degraded, {**result.record(), "width": result.degraded.width,
                                                         "height": result.degraded.height}, degraded_path))
    return entry


def _print_table(entry: dict[str, Any]) -> None:
    print(f"{entry['input']}" + (f"  (degraded: {entry['degraded']})" if entry.get("degraded") else ""))
    for row in entry["table"]:
        if row.get("error"):
            print(f"  {row['method']:<26} error: {row['error']}")
            continue
        psnr = "-" if row.get("psnr") is None else f"{row['psnr']:.2f} dB"
        ssim = "-" if row.get("ssim") is None else f"{row['ssim']:.4f}"
        brisque = f"  BRISQUE {row['brisque']:.1f}" if row.get("brisque") is not None else ""
        where = entry["outputs"].get(row["method"], "")
        print(f"  {row['method']:<26} PSNR {psnr:>9}  SSIM {ssim:>6}  {row['seconds']:7.3f} s{brisque}  {where}")


def cmd_restore(args: argparse.Namespace) -> dict[str, Any]:
    """Run the restore command (see module docstring); returns the JSON payload."""
    if args.list:
        return _list(args)
    if args.bench:
        return _bench(args)
    methods = _methods(args)
    if args.input is None:
        raise GenimgError("no --input given: an image or a folder of images")
    from genimg.config import settings
    from genimg.models.pool import get_pool
    from genimg.restore.degrade import parse_spec
    from genimg.restore.methods import check_methods

    # Mistakes that concern the whole request fail before any image is read.
    check_methods(get_pool(), methods)
    parse_spec(args.degrade)
    mask = None
    if args.mask is not None:
        from genimg.imageio import load_image

        decoded = load_image(args.mask, what="mask")
        mask = decoded.alpha if decoded.alpha is not None else decoded.image.convert("L")
    quiet = args.quiet or args.json
    progress = None
    if not quiet:
        from genimg.cli.common import cells_progress_bar

        progress = cells_progress_bar(True, "restore")
    if args.input.is_dir():
        images = sorted(p for p in args.input.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise GenimgError(f"folder {args.input} has no images ({', '.join(IMAGE_SUFFIXES)})")
        out = args.out or settings().output_dir / "restore"
        if out.suffix.lower() in IMAGE_SUFFIXES:
            raise GenimgError(f"--out {out} looks like a file, but --input is a folder: give a folder")
        out.mkdir(parents=True, exist_ok=True)
        entries, rows = [], []
        for path in images:
            try:
                entry = _one(path, args, methods, out, False, mask, progress)
            except GenimgError as exc:  # one bad file must not stop a batch: it gets an error row
                rows.append({"image": path.name, "error": str(exc)})
                entries.append({"input": str(path), "error": str(exc)})
                if not args.json:
                    print(f"{path}: error: {exc}")
                continue
            entries.append(entry)
            for row in entry["table"]:
                rows.append({"image": path.name, "method": row["method"], "task": row.get("task"),
                             "degradation": (entry["degradation"] or {}).get("spec", "none"), "seed": args.seed,
                             "psnr": row.get("psnr"), "ssim": row.get("ssim"), "brisque": row.get("brisque"),
                             "seconds": row.get("seconds"), "load_s": row.get("load_s"),
                             "output": entry["outputs"].get(row["method"], entry.get("degraded", "")
                                                            if row["method"] == "(degraded input)" else ""),
                             "error": row.get("error", "")})
            if not args.json:
                _print_table(entry)
        csv_path = out / "restore.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_FIELDS})
        if not args.json:
            print(f"table: {csv_path}")
        return {"command": "restore", "methods": methods, "degradation": args.degrade or "none", "seed": args.seed,
                "results": entries, "csv": str(csv_path)}
    single_file = args.out is not None and args.out.suffix.lower() in IMAGE_SUFFIXES
    if single_file and len(methods) > 1:
        raise GenimgError(f"--out {args.out} is one file but {len(methods)} methods were given: give a folder")
    out = args.out or settings().output_dir / "restore"
    entry = _one(args.input, args, methods, out, single_file, mask, progress)
    if not args.json:
        _print_table(entry)
    return {"command": "restore", "methods": methods, "degradation": args.degrade or "none", "seed": args.seed,
            "results": [entry]}
