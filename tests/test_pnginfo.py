"""PNG Info: our metadata round-trips (through sd-parsers too), and real A1111 / ComfyUI / InvokeAI files read right.

The files under tests/data/pnginfo/ were written by those tools and are copied verbatim from
sd-parsers' test resources (d3x-at/sd-parsers, commit 0949676c; tests/data/pnginfo/README.md maps
each to its path there). The expected values below are what those files say, checked against the
text of their chunks, not values our own writer made.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from genimg.outputs import save_result
from genimg.pnginfo import NO_PARAMETERS, NoParametersError, parse_a1111, read_info
from genimg.schedulers import a1111_sampler, sampler_of
from genimg.tasks.generate import GenerateRequest, generate

DATA = Path(__file__).resolve().parent / "data" / "pnginfo"
ROOT = Path(__file__).resolve().parent.parent


def read(name: str):
    with Image.open(DATA / name) as image:
        return read_info(image)


# -- real files written by other tools ------------------------------------------------------------------------


def test_reads_automatic1111_png():
    # sd-parsers: tests/resources/parsers/AUTOMATIC1111/automatic1111_cropped.png (A1111's `parameters` tEXt)
    info = read("automatic1111_cropped.png")
    assert info.source == "AUTOMATIC1111"
    assert (info.prompt, info.negative_prompt) == ("photo of a duck", "monochrome")
    assert (info.steps, info.sampler, info.guidance, info.seed) == (15, "UniPC", 5.0, 235284042)
    assert (info.width, info.height) == (512, 400)
    assert (info.model, info.model_hash) == ("realistic_realisticVisionV20_v20", "c0d1994c73")
    assert info.generate_fields()["scheduler"] == "unipc"  # a sampler we also offer is sent as ours


def test_reads_automatic1111_jpeg_exif_user_comment():
    # sd-parsers: tests/resources/parsers/AUTOMATIC1111/automatic1111_cropped.jpg (EXIF UserComment, UCS-2)
    info = read("automatic1111_cropped.jpg")
    assert info.source == "AUTOMATIC1111" and info.prompt == "photo of a duck" and info.seed == 235284042
    assert info.model_hash == "c0d1994c73"


def test_reads_comfyui_img2img_graph():
    # sd-parsers: tests/resources/parsers/ComfyUI/img2img_cropped.png (`prompt` + `workflow` chunks)
    info = read("img2img_cropped.png")
    assert info.source == "ComfyUI"
    assert info.prompt == "photograph of victorian woman with wings, sky clouds, meadow grass"
    assert info.negative_prompt == "watermark, text"
    assert (info.seed, info.steps, info.guidance) == (280823642470253, 20, 8.0)
    assert info.sampler == "DPM++ 2M" and info.extra["comfyui_sampler"] == "sample_dpmpp_2m"
    assert info.model == "v1-5-pruned-emaonly.ckpt"
    assert info.extra["denoise"] == pytest.approx(0.87)
    assert info.width is None  # img2img: the size is the input image's, which the graph does not say


def test_reads_comfyui_two_pass_graph_first_pass_and_keeps_the_second():
    # sd-parsers: tests/resources/parsers/ComfyUI/night_evening_day_morning_cropped.png (area prompts + hires pass)
    info = read("night_evening_day_morning_cropped.png")
    assert (info.seed, info.steps, info.guidance, info.sampler) == (335608130539327, 13, 8.5, "DPM++ SDE")
    assert (info.width, info.height) == (704, 1280)
    assert "national park scenery" in info.prompt and "(sunset:1.3)" in info.prompt  # combined area prompts
    assert info.negative_prompt.startswith("(hands), text, error")
    second = info.extra["passes"][0]
    assert (second["seed"], second["steps"], second["sampler_name"], second["denoise"]) == (1122440447966177, 14,
                                                                                           "dpmpp_2m", 0.5)


def test_reads_invokeai_3_and_2():
    # sd-parsers: tests/resources/parsers/InvokeAI/invokeai_imeta1.png (invokeai_metadata)
    info = read("invokeai_imeta1.png")
    assert info.source == "InvokeAI" and info.model == "juggernautXL"
    assert (info.steps, info.guidance, info.seed, info.width, info.height) == (35, 8.0, 3293022630, 1024, 1024)
    assert info.prompt == "digital artwork, oil painting. painterly brushstrokes, holidays,"
    assert "ipAdapters" in info.extra  # unknown fields kept, not dropped
    # sd-parsers: tests/resources/parsers/InvokeAI/invokeai_sdmeta1.png (sd-metadata, InvokeAI 2.3)
    info = read("invokeai_sdmeta1.png")
    assert (info.steps, info.sampler, info.seed, info.width, info.height) == (50, "k_lms", 2980747362, 512, 768)
    assert info.negative_prompt == "rendering, glowing eyes, skinny" and info.prompt.endswith("low contrast")
    assert info.model == "deliberateForInvoke_v08"


def test_a1111_quoted_values_and_extra_fields_are_kept():
    # A1111's infotext conventions (modules/infotext_utils.py): values with commas are JSON-quoted;
    # hires-fix and LoRA fields are further pairs on the same line. They land in `extra`, unquoted.
    text = ("a castle, at dusk\nsecond line\nNegative prompt: blurry, lowres\n"
            'Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 12, Size: 512x768, Model hash: abcdef0123, '
            'Model: dreamshaper_8, Denoising strength: 0.5, Hires upscale: 2, Hires upscaler: Latent, '
            'Lora hashes: "add_detail: 7c6bad76eb54, other: 123", Version: v1.9.4')
    info = parse_a1111(text)
    assert info.prompt == "a castle, at dusk\nsecond line" and info.negative_prompt == "blurry, lowres"
    assert (info.sampler, info.width, info.height, info.model) == ("DPM++ 2M Karras", 512, 768, "dreamshaper_8")
    assert info.extra["Lora hashes"] == "add_detail: 7c6bad76eb54, other: 123"
    assert info.extra["Hires upscale"] == "2" and info.extra["Hires upscaler"] == "Latent"
    assert info.scheduler is None  # no DPM++ 2M Karras choice here: Send to Generate says so


def test_plain_and_stripped_images_say_no_parameters(tmp_path):
    plain = Image.new("RGB", (8, 8), "white")
    with pytest.raises(NoParametersError, match=NO_PARAMETERS):
        read_info(plain)
    # Our own PNG re-saved without its chunks (what an EXIF/metadata stripper does).
    stripped = tmp_path / "stripped.png"
    with Image.open(DATA / "automatic1111_cropped.png") as image:
        image.save(stripped)  # Pillow writes no text chunks unless asked
    with Image.open(stripped) as image, pytest.raises(NoParametersError, match=NO_PARAMETERS):
        read_info(image)


# -- our writer, read back by us and by sd-parsers -------------------------------------------------------------


@pytest.fixture(scope="module")
def our_png(tiny_dirs, tmp_path_factory):
    from genimg.models.catalog import ModelSpec
    from genimg.models.pool import ModelPool

    spec = ModelSpec(id="tiny-a", name="Tiny A, random (test)", backend="diffusers", source=str(tiny_dirs["tiny-a"]),
                     tasks=("text-to-image",), dtype="fp32", defaults={"width": 32, "height": 32, "steps": 2})
    pool = ModelPool({"tiny-a": spec}, budget_bytes=1 << 33)
    request = GenerateRequest(prompt="a red star, on white", model="tiny-a", negative_prompt="blurry, dark",
                              steps=3, guidance=6.5, seed=42)
    result = generate(request, pool)
    path = save_result(result, tmp_path_factory.mktemp("ours"))[0]
    return path, result


def test_sd_parsers_reads_back_exactly_what_we_wrote(our_png, tiny_dirs):
    from sd_parsers import ParserManager

    path, result = our_png
    parsed = ParserManager().parse(str(path))
    assert parsed is not None and parsed.generator.name == "AUTOMATIC1111"
    (sampler,) = parsed.samplers
    assert sampler.name == "Euler"  # the tiny pipeline's own scheduler, under its A1111 name (not "Default")
    assert sampler.model.name == "tiny-a"  # the catalog id, whole (the display name has a comma)
    weights = Path(tiny_dirs["tiny-a"]) / "unet" / "diffusion_pytorch_model.safetensors"
    assert sampler.model.hash == hashlib.sha256(weights.read_bytes()).hexdigest()[:10]
    assert sampler.parameters == {"steps": "3", "cfg_scale": "6.5", "seed": "42"}
    assert [p.value for p in sampler.prompts] == ["a red star, on white"]
    assert [p.value for p in sampler.negative_prompts] == ["blurry, dark"]
    assert parsed.metadata["Size"] == "32x32"
    assert result.params["sampler"] == "Euler"


def test_our_reader_round_trips_both_chunks(our_png):
    path, result = our_png
    with Image.open(path) as image:
        ours = read_info(image)
        a1111 = parse_a1111(image.info["parameters"])
    assert ours.source == "genimg" and a1111.source == "AUTOMATIC1111"
    for info in (ours, a1111):
        assert (info.prompt, info.negative_prompt) == ("a red star, on white", "blurry, dark")
        assert (info.steps, info.guidance, info.seed, info.width, info.height) == (3, 6.5, 42, 32, 32)
        assert (info.sampler, info.model, info.model_hash) == ("Euler", "tiny-a", result.model["hash"])
    assert ours.generate_fields() == {"prompt": "a red star, on white", "negative_prompt": "blurry, dark",
                                      "model": "tiny-a", "width": 32, "height": 32, "steps": 3, "guidance": 6.5,
                                      "scheduler": "default", "seed": 42}


def test_embedded_models_write_their_real_sampler_and_hash(tmp_path):
    from genimg.models.pool import get_pool

    pool = get_pool()
    for model_id, sampler, weights in (("genimg-fewstep", "LCM", "fewstep/unet"), ("genimg-gan", "one-step", "gan/generator")):
        result = generate(GenerateRequest(prompt="a red circle", model=model_id, seed=1), pool)
        path = save_result(result, tmp_path)[0]
        with Image.open(path) as image:
            text = image.info["parameters"]
        digest = hashlib.sha256((ROOT / "assets/embedded" / weights / "diffusion_pytorch_model.safetensors")
                                .read_bytes()).hexdigest()[:10]
        assert f"Sampler: {sampler}," in text and f"Model hash: {digest}, Model: {model_id}," in text, text


def test_scheduler_names_follow_a1111():
    import diffusers

    cases = [("DPMSolverMultistepScheduler", {}, "DPM++ 2M"),
             ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, "DPM++ 2M Karras"),
             ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}, "DPM++ 2M SDE"),
             ("EulerAncestralDiscreteScheduler", {}, "Euler a"), ("DDIMScheduler", {}, "DDIM"),
             ("PNDMScheduler", {}, "PLMS"), ("LMSDiscreteScheduler", {"use_karras_sigmas": True}, "LMS Karras"),
             ("UniPCMultistepScheduler", {}, "UniPC"), ("LCMScheduler", {}, "LCM"), ("HeunDiscreteScheduler", {}, "Heun")]
    for cls, config, name in cases:
        assert a1111_sampler(cls, config) == name
        scheduler = getattr(diffusers, cls)(**config)

        class Pipe:  # what sampler_of reads: the scheduler attribute of a pipeline
            pass

        pipe = Pipe()
        pipe.scheduler = scheduler
        assert sampler_of(pipe) == name
    assert sampler_of(object()) == "one-step"


# -- the CLI --------------------------------------------------------------------------------------------------


def run_cli(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "genimg", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_info_json_and_errors(tmp_path):
    proc = run_cli("info", str(DATA / "automatic1111_cropped.png"), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["source"] == "AUTOMATIC1111" and out["seed"] == 235284042 and out["model_hash"] == "c0d1994c73"
    assert out["generate"]["steps"] == 15
    proc = run_cli("info", str(DATA / "img2img_cropped.png"))
    assert proc.returncode == 0 and "written by: ComfyUI" in proc.stdout and "denoise:" in proc.stdout
    plain = tmp_path / "plain.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "an image editor")
    Image.new("RGB", (16, 16)).save(plain, pnginfo=info)
    for args, words in (((str(plain),), NO_PARAMETERS), ((str(tmp_path / "nope.png"),), "does not exist")):
        proc = run_cli("info", *args)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("error: ") and words in proc.stderr, proc.stderr
