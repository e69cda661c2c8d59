"""PNG Info: generation parameters read back from an image, whoever wrote them.

Pure functions over an image's text chunks (PNG ``tEXt``/``iTXt``, a JPEG/WebP EXIF
``UserComment``) to one typed record, :class:`GenerationInfo`: the fields every tool shares
(prompt, negative prompt, steps, sampler, CFG, seed, size, model, model hash) plus ``extra``
for everything else (hires fix, LoRA hashes, a second sampler pass...), kept, never dropped.

Readers, tried in this order:

- ``genimg``: our own JSON chunk (the full record);
- ``AUTOMATIC1111``: the ``parameters`` text (also Forge, SD.Next, Civitai, and our own line);
- ``ComfyUI``: the ``prompt`` graph (API format) or, without it, the ``workflow`` (UI format);
- ``InvokeAI``: ``invokeai_metadata`` (3.x), ``sd-metadata`` (2.x) or the ``Dream`` command line.

An image with none of these (a plain photo, EXIF stripped) raises :class:`NoParametersError`.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from genimg.errors import GenimgError
from genimg.params import SCHEDULERS

NO_PARAMETERS = "no generation parameters found in this image"


class NoParametersError(GenimgError):
    """The image carries no generation parameters any reader here understands."""


@dataclass
class GenerationInfo:
    """What an image says about how it was made. ``None``: the writer did not say."""

    source: str                        # genimg | AUTOMATIC1111 | ComfyUI | InvokeAI
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    sampler: str | None = None         # as written (A1111 names for A1111 and us; ComfyUI's own names)
    guidance: float | None = None      # CFG scale
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    model_hash: str | None = None
    scheduler: str | None = None       # our scheduler choice (genimg.params) when one fits, else None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    def generate_fields(self) -> dict[str, Any]:
        """The Generate tab's inputs this record fills (prompt, negative_prompt, model, width, height,
        steps, guidance, scheduler, seed); fields it did not say are left out."""
        fields = {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "model": self.model,
                  "width": self.width, "height": self.height, "steps": self.steps, "guidance": self.guidance,
                  "scheduler": self.scheduler, "seed": self.seed}
        return {k: v for k, v in fields.items() if v is not None}


# ------------------------------------------------------------------ chunks


def text_chunks(image: Any) -> dict[str, str]:
    """The text an image carries: PNG text chunks by keyword, and an EXIF UserComment as ``parameters``
    (A1111 writes JPEG and WebP parameters there). ``image`` is an open PIL image."""
    chunks = {str(k): v for k, v in getattr(image, "info", {}).items() if isinstance(v, str)}
    text = getattr(image, "text", None)  # PNG: every tEXt/iTXt/zTXt chunk, also those after IDAT
    if isinstance(text, Mapping):
        chunks.update({str(k): str(v) for k, v in text.items()})
    if "parameters" not in chunks:
        comment = _exif_user_comment(image)
        if comment:
            chunks["parameters"] = comment
    return chunks


def _exif_user_comment(image: Any) -> str | None:
    try:
        exif = image.getexif()
        raw = exif.get_ifd(0x8769).get(0x9286)  # Exif IFD, UserComment
    except Exception:  # no EXIF, or a broken block: nothing to read
        return None
    if isinstance(raw, str):
        return raw.strip("\x00") or None
    if not isinstance(raw, bytes) or len(raw) < 8:
        return None
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        # EXIF says UCS-2 in the file's byte order; A1111 (piexif) writes big-endian, most readers agree.
        encoding = "utf-16-le" if body[:1] != b"\x00" and body[1:2] == b"\x00" else "utf-16-be"
        text = body.decode(encoding, errors="replace")
    else:
        text = body.decode("utf-8", errors="replace")
    return text.strip("\x00").strip() or None


# ------------------------------------------------------------------ AUTOMATIC1111

# One ``Key: value`` pair of A1111's last line: a value is a JSON string in quotes, or runs to the next comma.
_A1111_PAIR = re.compile(r'\s*(\w[\w \-/+.()]*?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


def _pairs(line: str) -> list[tuple[str, str]]:
    found = []
    for key, value in _A1111_PAIR.findall(line):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        found.append((key.strip(), value))
    return found


def _number(text: Any, kind: type) -> Any:
    try:
        return kind(float(text)) if kind is int else kind(text)
    except (TypeError, ValueError):
        return None


def our_scheduler(sampler: str | None) -> str | None:
    """Our scheduler choice (genimg.params.SCHEDULERS key) for an A1111 sampler name, or None."""
    if not sampler:
        return None
    for key, (_cls, name) in SCHEDULERS.items():
        if name.lower() == sampler.strip().lower():
            return key
    return None


def parse_a1111(text: str) -> GenerationInfo:
    """Read AUTOMATIC1111's ``parameters`` text: prompt lines, "Negative prompt:" lines, then the
    ``Key: value, ...`` line. Unknown keys go to ``extra`` with their values as written (unquoted).

    Raises NoParametersError when there is no line of at least three pairs (A1111's own rule).
    """
    lines = text.strip().split("\n")
    last = lines[-1] if lines else ""
    pairs = _pairs(last)
    if len(pairs) < 3:
        raise NoParametersError(f"{NO_PARAMETERS} (a 'parameters' text without its settings line)")
    prompt, negative, in_negative = [], [], False
    for line in lines[:-1]:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    info = GenerationInfo(source="AUTOMATIC1111", prompt="\n".join(prompt).strip(),
                          negative_prompt="\n".join(negative).strip())
    for key, value in pairs:
        if key == "Steps":
            info.steps = _number(value, int)
        elif key == "Sampler":
            info.sampler = value
        elif key == "CFG scale":
            info.guidance = _number(value, float)
        elif key == "Seed":
            info.seed = _number(value, int)
        elif key == "Size" and _SIZE.match(value):
            w, h = _SIZE.match(value).groups()
            info.width, info.height = int(w), int(h)
        elif key == "Model":
            info.model = value
        elif key == "Model hash":
            info.model_hash = value
        else:
            info.extra[key] = value
    info.scheduler = our_scheduler(info.sampler)
    return info


# ------------------------------------------------------------------ ComfyUI

# ComfyUI sampler / scheduler names -> the A1111 names (one vocabulary in the record).
_COMFY_SAMPLERS = {"euler": "Euler", "euler_ancestral": "Euler a", "heun": "Heun", "dpm_2": "DPM2",
                   "dpm_2_ancestral": "DPM2 a", "lms": "LMS", "dpmpp_2m": "DPM++ 2M", "dpmpp_sde": "DPM++ SDE",
                   "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2s_ancestral": "DPM++ 2S a", "ddim": "DDIM",
                   "uni_pc": "UniPC", "uni_pc_bh2": "UniPC", "lcm": "LCM", "dpmpp_3m_sde": "DPM++ 3M SDE"}


def _comfy_sampler(name: str | None, schedule: str | None) -> str | None:
    if not name:
        return None
    base = _COMFY_SAMPLERS.get(name.removeprefix("sample_"))
    if base is None:
        return name
    return base + (" Karras" if schedule == "karras" else "")


def _link(value: Any) -> str | None:
    """The node id a ComfyUI input links to (``["6", 0]``), or None for a literal."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)):
        return str(value[0])
    return None


def _upstream_texts(graph: dict[str, Any], start: str | None) -> list[str]:
    """The prompt texts feeding a conditioning input: every text node upstream (combine/area nodes walked)."""
    texts, seen, todo = [], set(), [start] if start else []
    while todo:
        node_id = todo.pop(0)
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        inputs = graph[node_id].get("inputs", {})
        for key in ("text", "text_g", "prompt"):
            if isinstance(inputs.get(key), str):
                texts.append(inputs[key].strip())
                break
        else:
            todo.extend(n for n in (_link(v) for v in inputs.values()) if n)
    return texts


def _upstream(graph: dict[str, Any], start: str | None, wanted: tuple[str, ...]) -> dict[str, Any] | None:
    """The first node upstream of ``start`` whose inputs hold all of ``wanted`` as literals."""
    seen, todo = set(), [start] if start else []
    while todo:
        node_id = todo.pop(0)
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        inputs = graph[node_id].get("inputs", {})
        if all(k in inputs and _link(inputs[k]) is None for k in wanted):
            return inputs
        todo.extend(n for n in (_link(v) for v in inputs.values()) if n)
    return None


def _is_sampler(node: dict[str, Any]) -> bool:
    inputs = node.get("inputs", {})
    return ("seed" in inputs or "noise_seed" in inputs) and "steps" in inputs and "cfg" in inputs


def _sampler_upstream(graph: dict[str, Any], start: str | None) -> bool:
    """Whether a sampler node feeds ``start`` (directly or through upscale/combine nodes)."""
    seen, todo = set(), [start] if start else []
    while todo:
        node_id = todo.pop(0)
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        if _is_sampler(graph[node_id]):
            return True
        todo.extend(n for n in (_link(v) for v in graph[node_id].get("inputs", {}).values()) if n)
    return False


def parse_comfyui_prompt(text: str) -> GenerationInfo:
    """Read ComfyUI's ``prompt`` chunk (the API-format graph): the first sampler pass's seed, steps, cfg,
    sampler and scheduler, its positive/negative texts, latent size and checkpoint; later passes
    (hires fix) go to ``extra["passes"]``. Raises NoParametersError when there is no sampler node."""
    try:
        graph = json.loads(text)
    except json.JSONDecodeError:
        raise NoParametersError(f"{NO_PARAMETERS} (the ComfyUI 'prompt' chunk is not JSON)") from None
    if not isinstance(graph, dict):
        raise NoParametersError(f"{NO_PARAMETERS} (the ComfyUI 'prompt' chunk is not a graph)")
    graph = {str(k): v for k, v in graph.items() if isinstance(v, dict)}
    samplers = sorted((k for k, v in graph.items() if _is_sampler(v)), key=lambda k: (len(k), k))
    if not samplers:
        raise NoParametersError(f"{NO_PARAMETERS} (a ComfyUI graph without a sampler node)")
    # The first pass is the one whose latent comes from no other sampler (an empty latent, or an
    # encoded image for img2img); a hires pass starts from another pass's upscaled latent.
    first = next((k for k in samplers if not _sampler_upstream(graph, _link(graph[k]["inputs"].get("latent_image")))),
                 samplers[0])
    passes = []
    for node_id in [first] + [k for k in samplers if k != first]:
        node = graph[node_id]
        inputs = node["inputs"]
        latent = _upstream(graph, _link(inputs.get("latent_image")), ("width", "height"))
        checkpoint = _upstream(graph, _link(inputs.get("model")), ("ckpt_name",))
        passes.append({
            "node": node_id, "class_type": node.get("class_type"),
            "seed": inputs.get("seed", inputs.get("noise_seed")), "steps": inputs.get("steps"),
            "cfg": inputs.get("cfg"), "sampler_name": inputs.get("sampler_name"), "scheduler": inputs.get("scheduler"),
            "denoise": inputs.get("denoise"),
            "positive": "\n".join(_upstream_texts(graph, _link(inputs.get("positive")))),
            "negative": "\n".join(_upstream_texts(graph, _link(inputs.get("negative")))),
            "width": latent.get("width") if latent else None, "height": latent.get("height") if latent else None,
            "model": checkpoint.get("ckpt_name") if checkpoint else None,
        })
    p = passes[0]
    info = GenerationInfo(source="ComfyUI", prompt=p["positive"], negative_prompt=p["negative"],
                          steps=_number(p["steps"], int), guidance=_number(p["cfg"], float),
                          seed=_number(p["seed"], int), sampler=_comfy_sampler(p["sampler_name"], p["scheduler"]),
                          width=_number(p["width"], int), height=_number(p["height"], int), model=p["model"])
    info.scheduler = our_scheduler(info.sampler)
    info.extra = {"comfyui_sampler": p["sampler_name"], "comfyui_scheduler": p["scheduler"], "denoise": p["denoise"]}
    if len(passes) > 1:
        info.extra["passes"] = passes[1:]
    return info


def parse_comfyui_workflow(text: str) -> GenerationInfo:
    """Read ComfyUI's ``workflow`` chunk (the UI graph) when no ``prompt`` chunk came with it: a KSampler
    node's widget values (seed, control, steps, cfg, sampler, scheduler, denoise) and the text of the
    prompt nodes. Raises NoParametersError when there is no KSampler node."""
    try:
        workflow = json.loads(text)
    except json.JSONDecodeError:
        raise NoParametersError(f"{NO_PARAMETERS} (the ComfyUI 'workflow' chunk is not JSON)") from None
    nodes = workflow.get("nodes", []) if isinstance(workflow, dict) else []
    sampler = next((n for n in nodes if n.get("type") in ("KSampler", "KSamplerAdvanced")), None)
    if sampler is None:
        raise NoParametersError(f"{NO_PARAMETERS} (a ComfyUI workflow without a KSampler node)")
    values = list(sampler.get("widgets_values", []))
    if sampler.get("type") == "KSamplerAdvanced":
        values = values[1:]  # add_noise comes first
    values += [None] * 7
    seed, _control, steps, cfg, name, schedule, denoise = values[:7]
    texts = [n.get("widgets_values", [""])[0] for n in nodes if n.get("type") == "CLIPTextEncode"]
    info = GenerationInfo(source="ComfyUI", prompt=(texts[0] if texts else "").strip(),
                          steps=_number(steps, int), guidance=_number(cfg, float), seed=_number(seed, int),
                          sampler=_comfy_sampler(name, schedule))
    info.scheduler = our_scheduler(info.sampler)
    info.extra = {"comfyui_sampler": name, "comfyui_scheduler": schedule, "denoise": denoise,
                  "prompt_texts": texts, "note": "read from the workflow (UI) graph: which text is negative is a guess"}
    info.negative_prompt = (texts[1] if len(texts) > 1 else "").strip()
    return info


# ------------------------------------------------------------------ InvokeAI


def parse_invokeai(chunks: Mapping[str, str]) -> GenerationInfo:
    """Read InvokeAI metadata: ``invokeai_metadata`` (3.x+), else ``sd-metadata`` (2.x), else ``Dream``."""
    if "invokeai_metadata" in chunks:
        meta = json.loads(chunks["invokeai_metadata"])
        model = meta.get("model")
        info = GenerationInfo(source="InvokeAI", prompt=meta.get("positive_prompt", ""),
                              negative_prompt=meta.get("negative_prompt", ""), steps=_number(meta.get("steps"), int),
                              sampler=meta.get("scheduler"), guidance=_number(meta.get("cfg_scale"), float),
                              seed=_number(meta.get("seed"), int), width=_number(meta.get("width"), int),
                              height=_number(meta.get("height"), int),
                              model=(model.get("model_name") or model.get("name")) if isinstance(model, dict) else model)
        known = {"positive_prompt", "negative_prompt", "steps", "scheduler", "cfg_scale", "seed", "width", "height",
                 "model"}
        info.extra = {k: v for k, v in meta.items() if k not in known}
        return info
    if "sd-metadata" in chunks:
        meta = json.loads(chunks["sd-metadata"])
        image = meta.get("image", {})
        prompt = image.get("prompt", "")
        if isinstance(prompt, list):
            prompt = " ".join(p.get("prompt", "") for p in prompt if isinstance(p, dict))
        positive, negative = _invoke_split(prompt)
        info = GenerationInfo(source="InvokeAI", prompt=positive, negative_prompt=negative,
                              steps=_number(image.get("steps"), int), sampler=image.get("sampler"),
                              guidance=_number(image.get("cfg_scale"), float), seed=_number(image.get("seed"), int),
                              width=_number(image.get("width"), int), height=_number(image.get("height"), int),
                              model=meta.get("model_weights"), model_hash=meta.get("model_hash"))
        info.extra = {k: v for k, v in image.items()
                      if k not in ("prompt", "steps", "sampler", "cfg_scale", "seed", "width", "height")}
        info.extra.update({k: meta[k] for k in ("app_id", "app_version") if k in meta})
        return info
    return _parse_dream(chunks["Dream"])


def _invoke_split(prompt: str) -> tuple[str, str]:
    """InvokeAI 2.x writes the negative prompt in square brackets inside the prompt."""
    negatives = re.findall(r"\[([^\[\]]*)\]", prompt)
    positive = re.sub(r"\s*\[[^\[\]]*\]", "", prompt).strip()
    return positive, ", ".join(n.strip() for n in negatives)


def _parse_dream(text: str) -> GenerationInfo:
    try:
        words = shlex.split(text)
    except ValueError:
        raise NoParametersError(f"{NO_PARAMETERS} (an unreadable InvokeAI 'Dream' line)") from None
    flags = {"-s": "steps", "-S": "seed", "-W": "width", "-H": "height", "-C": "cfg", "-A": "sampler"}
    found: dict[str, str] = {}
    prompt = words[0] if words else ""
    for i, word in enumerate(words[1:-1], start=1):
        if word in flags:
            found[flags[word]] = words[i + 1]
    positive, negative = _invoke_split(prompt)
    return GenerationInfo(source="InvokeAI", prompt=positive, negative_prompt=negative,
                          steps=_number(found.get("steps"), int), seed=_number(found.get("seed"), int),
                          width=_number(found.get("width"), int), height=_number(found.get("height"), int),
                          guidance=_number(found.get("cfg"), float), sampler=found.get("sampler"),
                          extra={"dream": text})


# ------------------------------------------------------------------ ours and the dispatcher


def parse_genimg(text: str) -> GenerationInfo:
    """Read our own ``genimg`` JSON chunk (genimg.outputs): the full record, timings in ``extra``."""
    record = json.loads(text)
    model = record.get("model") or {}
    info = GenerationInfo(source="genimg", prompt=record.get("prompt", ""),
                          negative_prompt=record.get("negative_prompt", ""), steps=record.get("steps"),
                          sampler=record.get("sampler"), guidance=record.get("guidance"), seed=record.get("seed"),
                          width=record.get("width"), height=record.get("height"), model=model.get("id"),
                          model_hash=model.get("hash"), scheduler=record.get("scheduler"))
    known = {"prompt", "negative_prompt", "steps", "sampler", "guidance", "seed", "width", "height", "model",
             "scheduler"}
    info.extra = {k: v for k, v in record.items() if k not in known}
    info.extra["model_name"] = model.get("name")
    return info


def parse_chunks(chunks: Mapping[str, str]) -> GenerationInfo:
    """The generation parameters in an image's text ``chunks`` (see :func:`text_chunks`).

    Raises NoParametersError (a GenimgError, exit code 2) with "no generation parameters found"
    when no reader understands them.
    """
    try:
        if "genimg" in chunks:
            return parse_genimg(chunks["genimg"])
        if "parameters" in chunks and not chunks["parameters"].lstrip().startswith("{"):
            return parse_a1111(chunks["parameters"])
        if "prompt" in chunks:
            return parse_comfyui_prompt(chunks["prompt"])
        if "workflow" in chunks:
            return parse_comfyui_workflow(chunks["workflow"])
        if any(k in chunks for k in ("invokeai_metadata", "sd-metadata", "Dream")):
            return parse_invokeai(chunks)
    except NoParametersError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # JSON of an unexpected shape
        raise NoParametersError(f"{NO_PARAMETERS} (its metadata could not be read: {exc})") from None
    if "genimg-grid" in chunks:
        raise NoParametersError(f"{NO_PARAMETERS}: this is a genimg parameter grid; each cell's own PNG "
                                "(cellNNN-*.png beside it) carries that cell's parameters")
    raise NoParametersError(NO_PARAMETERS + " (no A1111, ComfyUI, InvokeAI or genimg metadata; "
                            "an image that was re-saved or had its metadata stripped has none)")


def read_info(image: Any) -> GenerationInfo:
    """The generation parameters of an open PIL image. Raises NoParametersError when it has none."""
    return parse_chunks(text_chunks(image))


__all__ = ["GenerationInfo", "NO_PARAMETERS", "NoParametersError", "parse_a1111", "parse_chunks",
           "parse_comfyui_prompt", "parse_comfyui_workflow", "parse_genimg", "parse_invokeai", "read_info",
           "text_chunks"]
