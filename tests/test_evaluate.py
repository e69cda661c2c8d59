"""The comparison runner (/evaluate, `python -m genimg evaluate`), its statistics, cache and report."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from genimg.errors import GenimgError
from genimg.evaluation.references import reference_scene
from genimg.tasks import evaluate as ev
from genimg.tasks.evaluate import EvaluateRequest, evaluate

# Small and quick: 1 denoising step, no warm-up, cheap per-image metrics. Faithfulness runs on
# grammar renders (a fake model below): the grammar's detector is slow on the noise that the
# tiny random pipelines draw.
FAST = ["sharpness", "colourfulness", "entropy"]
SET = ["brisque", "fd", "kid", "diversity"]
GRAMMAR = ["a red circle on a blue background", "two small green squares on a white background"]
PROMPTS = [GRAMMAR[0], "a lighthouse at dusk"]


def request(cache, models, prompts=PROMPTS, seeds=(0, 1), metrics=FAST, steps=1, **kw):
    return EvaluateRequest(models=list(models), prompts=list(prompts), seeds=list(seeds), steps=steps, metrics=metrics,
                           cache_dir=cache, warmup=False, **kw)


class Counter:
    """Counts pipeline calls (one per generated cell) made by the runner."""

    def __init__(self, monkeypatch, fake=None):
        self.calls: list[tuple[str, str, int]] = []
        real = ev.run_pipeline

        def counting(lease, resolved, progress=None):
            self.calls.append((lease.handle.spec.id, resolved["prompt"], resolved["seed"]))
            return fake(lease, resolved) if fake else real(lease, resolved, progress)

        monkeypatch.setattr(ev, "run_pipeline", counting)


@pytest.fixture(scope="module")
def runs(shared_pool, tmp_path_factory):
    """One model, then the same request with a second model, on one cache (pipeline calls counted)."""
    cache = tmp_path_factory.mktemp("evaluate-cache")
    with pytest.MonkeyPatch.context() as mp:
        counter = Counter(mp)
        progress = []
        first = evaluate(request(cache, ["tiny-a"], metrics=FAST + SET), shared_pool,
                         progress=lambda d, t, label: progress.append((d, t)))
        first_calls = list(counter.calls)
        counter.calls.clear()
        second = evaluate(request(cache, ["tiny-a", "tiny-b"], metrics=FAST + SET), shared_pool)
        second_calls = list(counter.calls)
        counter.calls.clear()
        third = evaluate(request(cache, ["tiny-a"], prompts=PROMPTS[:1], seeds=[0], steps=2), shared_pool)
    return dict(cache=cache, first=first, second=second, third=third, first_calls=first_calls,
                second_calls=second_calls, third_calls=list(counter.calls), progress=progress)


def test_adding_a_model_only_generates_its_cells(runs):
    first, second = runs["first"], runs["second"]
    assert len(runs["first_calls"]) == 4 and first.generated == 4 and first.cache_hits == 0
    assert runs["progress"][-1] == (4, 4)
    assert all(row.image.size == (32, 32) for row in first.rows)
    # tiny-a's four cells come from the cache; only tiny-b's four are generated.
    assert sorted({c[0] for c in runs["second_calls"]}) == ["tiny-b"] and len(runs["second_calls"]) == 4
    assert second.cache_hits == 4 and second.generated == 4
    cached = {(r.prompt, r.seed): r for r in second.rows if r.model == "tiny-a"}
    for row in first.rows:
        again = cached[(row.prompt, row.seed)]
        assert again.cached and again.latency_s == pytest.approx(row.latency_s)
        assert np.array_equal(np.asarray(again.image), np.asarray(row.image))
        assert again.metrics == pytest.approx(row.metrics)
    # A different setting (steps 2 instead of 1) is a different cell: generated again.
    assert runs["third"].generated == 1 and len(runs["third_calls"]) == 1


def test_per_model_means_are_the_means_of_the_rows(runs):
    second = runs["second"]
    for model in ("tiny-a", "tiny-b"):
        rows = [r for r in second.rows if r.model == model]
        stats = second.summary[model]["metrics"]
        for key in FAST + ["brisque"]:
            values = [r.metrics[key] for r in rows]
            assert stats[key]["mean"] == pytest.approx(float(np.mean(values)))
            assert stats[key]["n"] == 4
            assert stats[key]["ci_low"] <= stats[key]["mean"] <= stats[key]["ci_high"]
        lat = [r.latency_s for r in rows]
        assert second.summary[model]["latency"]["median_s"] == pytest.approx(float(np.median(lat)))
        assert second.summary[model]["latency"]["images_per_s"] == pytest.approx(len(lat) / sum(lat))
        sets = second.summary[model]["set_metrics"]
        assert sets["fd"]["n_a"] == 2 and sets["fd"]["warning"] and sets["fd"]["value"] >= 0  # 1 grammar prompt x 2
        assert "outside the grammar left out" in sets["fd"]["note"]
        assert sets["diversity"]["n"] == 2  # two prompts with two seeds each


def test_faithfulness_and_fd_on_a_fake_model_that_draws_the_grammar(shared_pool, tmp_path, monkeypatch):
    """A "model" whose images are the grammar's own renders of each prompt passes every check,
    and its FD to the reference renders of the same scenes is 0."""
    from genimg.scenes.grammar import render
    from genimg.tasks.timing import Timings

    def draw(_lease, resolved):
        prompt = resolved["prompt"] if resolved["prompt"] in GRAMMAR else GRAMMAR[0]  # a cat: draw anything
        return [render(reference_scene(prompt, resolved["seed"]), 64)], Timings(total_s=0.01)

    Counter(monkeypatch, fake=draw)
    result = evaluate(request(tmp_path, ["tiny-a"], prompts=GRAMMAR + ["a photo of a cat"],
                              metrics=["faithfulness", "fd", "entropy", "diversity"]), shared_pool)
    rows = {(r.prompt, r.seed): r for r in result.rows}
    for prompt in GRAMMAR:
        for seed in (0, 1):
            assert rows[(prompt, seed)].metrics["faithfulness"] == 1.0 and rows[(prompt, seed)].checks["all"]
    cat = rows[("a photo of a cat", 0)]
    assert cat.metrics["faithfulness"] is None and "outside the scene grammar" in cat.notes["faithfulness"]
    stats = result.summary["tiny-a"]["metrics"]["faithfulness"]
    assert stats["mean"] == 1.0 and stats["n"] == 4 and stats["missing"] == 2 and stats["ci_method"] == "wilson"
    assert stats["ci_low"] < 1.0 == stats["ci_high"]
    assert result.summary["tiny-a"]["set_metrics"]["fd"]["value"] == pytest.approx(0.0, abs=1e-6)
    per_check = result.summary["tiny-a"]["faithfulness_checks"]
    assert per_check["colour"] == {"accuracy": 1.0, "n": 4} and per_check["all"]["accuracy"] == 1.0
    # Two seeds' renders of a caption are distinct pictures: no pixel near-duplicates (the feature rate,
    # calibrated on photos, may call flat scenes near-duplicates: it is reported beside it).
    assert [d["pixel_near_duplicate_rate"] for d in result.diversity] == [0.0] * 3
    assert result.summary["tiny-a"]["set_metrics"]["diversity"]["pixel_near_duplicate_rate"] == 0.0


def test_a_missing_model_becomes_error_rows_and_the_others_still_run(shared_pool, tmp_path):
    pool = shared_pool
    result = evaluate(request(tmp_path, ["missing-hub", "tiny-a"], prompts=GRAMMAR[:1], seeds=[3]), pool)
    assert "cannot be loaded here" in result.errors["missing-hub"]
    bad = [r for r in result.rows if r.model == "missing-hub"]
    assert len(bad) == 1 and bad[0].image is None and "cannot be loaded" in bad[0].error
    assert result.summary["missing-hub"]["n_images"] == 0
    assert result.summary["tiny-a"]["n_images"] == 1
    with pytest.raises(GenimgError, match="no model could run"):
        evaluate(request(tmp_path, ["missing-hub"], prompts=GRAMMAR[:1], seeds=[3]), pool)


@pytest.mark.parametrize("kwargs, text", [
    (dict(models=["nope"]), "unknown model 'nope'"),
    (dict(models=[]), "no model chosen"),
    (dict(prompts=[]), "no prompts given"),
    (dict(prompts=["   ", ""]), "no prompts given"),
    (dict(seeds=[]), "no seeds given"),
    (dict(seeds=["x"]), "seed must be a whole number"),
    (dict(metrics=["psnr"]), "needs a reference image"),
    (dict(metrics=["bogus"]), "unknown metric 'bogus'"),
    (dict(prompts=["p"] * 1000), "too many"),
])
def test_bad_requests_are_clear_errors(shared_pool, tmp_path, kwargs, text):
    pool = shared_pool
    base = dict(models=["tiny-a"], prompts=["a cat"], seeds=[0], metrics=FAST, cache_dir=tmp_path)
    with pytest.raises(GenimgError, match=text):
        evaluate(EvaluateRequest(**{**base, **kwargs}), pool)


def test_identical_settings_take_the_first_models_defaults_unless_own_defaults(pool, tmp_path):
    from dataclasses import replace

    catalog = dict(pool.catalog)
    catalog["tiny-b"] = replace(catalog["tiny-b"], defaults={**catalog["tiny-b"].defaults, "width": 48, "height": 48})
    from genimg.models.pool import ModelPool

    other = ModelPool(catalog, budget_bytes=1 << 34)
    shared = ev._resolve_all(EvaluateRequest(models=["tiny-a", "tiny-b"], prompts=["x"], own_defaults=False),
                             ["tiny-a", "tiny-b"], other)
    assert shared["tiny-a"] == shared["tiny-b"] and shared["tiny-b"]["width"] == 32
    own = ev._resolve_all(EvaluateRequest(models=["tiny-a", "tiny-b"], prompts=["x"]),  # the default
                          ["tiny-a", "tiny-b"], other)
    assert own["tiny-b"]["width"] == 48 and own["tiny-a"]["width"] == 32


def test_faithfulness_on_grammar_renders_and_prompts_outside_the_grammar():
    from genimg.scenes.grammar import eval_prompt_set, render

    scenes = eval_prompt_set()[::8]
    for scene in scenes:
        values, notes, checks = ev.image_metrics(render(scene, 64), scene.caption, ["faithfulness", "entropy"])
        assert values["faithfulness"] == 1.0 and checks["all"] is True and not notes
    # The render of another scene fails its caption.
    values, _notes, checks = ev.image_metrics(render(scenes[0], 64), scenes[1].caption, ["faithfulness"])
    assert values["faithfulness"] == 0.0 and checks["all"] is False
    values, notes, _ = ev.image_metrics(render(scenes[0], 64), "a photo of a cat", ["faithfulness", "niqe"])
    assert values["faithfulness"] is None and "outside the scene grammar" in notes["faithfulness"]
    assert values["niqe"] is None and "at least 192x192" in notes["niqe"]


def test_reference_scenes_satisfy_their_prompts():
    from genimg.scenes.evaluator import score_image
    from genimg.scenes.grammar import render

    for prompt in ev.grammar_prompts(12) + ["a big red star to the left of a small blue circle, white background"]:
        for seed in (0, 1):
            scene = reference_scene(prompt, seed)
            assert score_image(render(scene, 64), prompt)["all"], (prompt, seed, scene)
    with pytest.raises(GenimgError, match="outside the scene grammar"):
        reference_scene("a cat", 0)


def test_grammar_prompt_subset_covers_every_kind():
    from genimg.scenes.prompts import parse_prompt

    prompts = ev.grammar_prompts(8)
    assert len(prompts) == 8 and len(set(prompts)) == 8
    assert {parse_prompt(p).kind for p in prompts} == {"single", "position", "count", "relation"}
    assert len(ev.grammar_prompts()) == 64


def test_intervals_contain_the_mean_and_shrink_with_n():
    from scipy import stats

    rng = np.random.default_rng(0)
    widths = []
    for n in (5, 20, 80, 320):
        values = list(rng.normal(10.0, 2.0, n))
        mean, low, high = ev.t_interval(values)
        assert low < mean < high and mean == pytest.approx(np.mean(values))
        ref_low, ref_high = stats.t.interval(0.95, n - 1, loc=np.mean(values), scale=stats.sem(values))
        assert (low, high) == pytest.approx((ref_low, ref_high))
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0] / 4
    # Wilson: inside [0, 1], contains p, and at p = 0 still has a width.
    p, low, high = ev.wilson_interval(0, 10)
    assert p == 0 and low == 0 and 0.2 < high < 0.35   # 0.2775 for n = 10
    p, low, high = ev.wilson_interval(7, 10)
    assert low < p < high and (low, high) == pytest.approx((0.3968, 0.8922), abs=1e-4)
    assert ev.t_interval([1.0])[1] is None


def test_pareto_front():
    points = {"fast-bad": (0.1, 0.2), "slow-good": (1.0, 0.9), "dominated": (1.2, 0.5), "mid": (0.5, 0.6),
              "tie-slower": (0.6, 0.6)}
    assert sorted(ev.pareto_front(points)) == ["fast-bad", "mid", "slow-good"]
    # Lower-is-better quality flips the quality axis.
    assert sorted(ev.pareto_front({"a": (0.1, 5.0), "b": (0.2, 1.0), "c": (0.3, 2.0)}, False)) == ["a", "b"]


def test_seed_and_prompt_parsing(tmp_path):
    assert ev.parse_seeds("0,1, 2") == [0, 1, 2] and ev.parse_seeds("3-5") == [3, 4, 5]
    assert ev.parse_seeds([4, 4, 2]) == [4, 2]
    with pytest.raises(GenimgError, match="too many"):
        ev.parse_seeds("0-500")
    f = tmp_path / "p.txt"
    f.write_text("a cat\n\n  a dog  \n", encoding="utf-8")
    assert ev.read_prompts_file(f) == ["a cat", "a dog"]
    f.write_text("\n \n", encoding="utf-8")
    with pytest.raises(GenimgError, match="holds no prompts"):
        ev.read_prompts_file(f)
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(GenimgError, match="not UTF-8"):
        ev.read_prompts_file(f)
    with pytest.raises(GenimgError, match="not found"):
        ev.read_prompts_file(tmp_path / "nope.txt")


def test_report_folder_csv_json_agree_and_reproduce_parses(runs, tmp_path):
    from genimg.cli import build_parser
    from genimg.cli.evaluate import request_from_args
    from genimg.evaluation.report import write_report

    result = runs["second"]
    paths = write_report(result, tmp_path / "report")
    folder = paths.folder
    for name in ("results.csv", "results.json", "config.json", "reproduce.sh", "report.html", "prompts.txt"):
        assert (folder / name).is_file(), name
    pngs = sorted((folder / "images").glob("*.png"))
    assert len(pngs) == 8
    assert paths.zip is not None and paths.zip.is_file()
    import zipfile

    with zipfile.ZipFile(paths.zip) as z:
        assert "report/results.csv" in z.namelist() and "report/report.html" in z.namelist()

    with open(folder / "results.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    data = json.loads((folder / "results.json").read_text())
    assert len(table) == len(data["rows"]) == 8
    for line, row in zip(table, data["rows"]):
        assert line["model"] == row["model"] and int(line["seed"]) == row["seed"]
        assert float(line["latency_s"]) == pytest.approx(row["latency_s"])
        for key in FAST + ["brisque"]:
            value = row["metrics"][key]  # noqa: PLW2901
            assert (line[key] == "") if value is None else float(line[key]) == pytest.approx(value)
        assert (folder / line["image"]).is_file()
    # The summary in results.json is the mean of its own rows.
    for model in ("tiny-a", "tiny-b"):
        values = [r["metrics"]["sharpness"] for r in data["rows"] if r["model"] == model]
        assert data["summary"][model]["metrics"]["sharpness"]["mean"] == pytest.approx(np.mean(values))
        assert data["summary"][model]["set_metrics"]["fd"]["value"] == pytest.approx(
            result.summary[model]["set_metrics"]["fd"]["value"])

    config = json.loads((folder / "config.json").read_text())
    assert config["models"]["tiny-a"]["fingerprint"]["kind"] == "sha256"
    assert config["models"]["tiny-a"]["fingerprint"] != config["models"]["tiny-b"]["fingerprint"]
    assert config["models"]["tiny-a"]["scheduler_config"]["class"] == "EulerDiscreteScheduler"
    assert config["seeds"] == [0, 1] and config["libraries"]["torch"] and config["hardware"]["cpu"]
    assert config["settings"]["tiny-a"]["steps"] == 1 and config["settings"]["tiny-b"]["width"] == 32

    script = (folder / "reproduce.sh").read_text().strip().splitlines()[-1]
    argv = shlex.split(script.replace("$HERE", str(folder)))
    assert argv[:4] == ["python", "-m", "genimg", "evaluate"]
    args = build_parser().parse_args(argv[3:])
    again = request_from_args(args)
    assert args.out == folder / "rerun" and args.no_cache
    assert again.models == ["tiny-a,tiny-b"] and again.seeds == [0, 1] and again.steps == 1
    assert again.prompts == result.request["prompts"] and again.metrics == [",".join(result.metrics)]
    html = paths.html.read_text()
    assert "<svg" in html and "data:image/png;base64," in html and "Pareto" in html and "<script" not in html


def test_cli_evaluate_json_and_user_errors(shared_pool, tmp_path, capsys, monkeypatch):
    from genimg.cli import main
    from genimg.models.pool import set_pool

    monkeypatch.setenv("GENIMG_CACHE_DIR", str(tmp_path / "cache"))
    set_pool(shared_pool)
    try:
        code = main(["evaluate", "--models", "tiny-a", "--prompts", "a red circle", "--seeds", "0", "--steps", "1",
                     "--metrics", "sharpness,entropy", "--out", str(tmp_path / "out"), "--json", "--no-warmup"])
        out = capsys.readouterr()
        assert code == 0, out.err
        payload = json.loads(out.out)
        assert payload["summary"]["tiny-a"]["metrics"]["sharpness"]["n"] == 1
        assert Path(payload["html"]).is_file() and Path(payload["zip"]).is_file()
        for argv, text in [
            (["--models", "nope", "--prompts", "x"], "unknown model 'nope'"),
            (["--models", "tiny-a", "--prompts", " "], "no prompts given"),
            (["--models", "tiny-a", "--prompts-file", str(tmp_path / "missing.txt")], "not found"),
            (["--models", "tiny-a", "--grammar-set", "0"], "--grammar-set takes 1 to 64"),
            (["--models", "tiny-a", "--prompts", "x", "--metrics", "ssim"], "needs a reference image"),
        ]:
            assert main(["evaluate", *argv, "--out", str(tmp_path / "bad")]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("error: ") and text in err[0], err
    finally:
        set_pool(None)


def test_clip_score_with_a_tiny_clip_model(tmp_path, monkeypatch):
    """The CLIP path with real loading code on a random tiny CLIP: the score equals
    100·max(cos, 0) of the model's own projected embeddings."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    from genimg.metrics import clip_score as cs
    from genimg.models.tiny import write_tiny_clip_tokenizer

    folder = tmp_path / "clip"
    write_tiny_clip_tokenizer(folder)
    tok = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=16)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer",
                                                              "model_max_length": 16}))
    torch.manual_seed(0)
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=32,
                  patch_size=8)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)

    monkeypatch.setenv("GENIMG_CLIP_DIR", str(folder))
    assert cs.clip_available()[0]
    images = [np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8) for i in range(3)]
    prompts = ["a red circle", "the cat", "a dog and a cat"]
    scores = cs.ClipScorer(str(folder)).score(images, prompts)
    processor = CLIPImageProcessorPil.from_pretrained(folder)
    with torch.no_grad():
        img = model.get_image_features(pixel_values=processor(images=images, return_tensors="pt")["pixel_values"])
        txt = model.get_text_features(**tok(prompts, padding=True, return_tensors="pt"))
    img = getattr(img, "pooler_output", img)
    txt = getattr(txt, "pooler_output", txt)
    expected = 100 * torch.nn.functional.cosine_similarity(img, txt).clamp(min=0).numpy()
    assert scores == pytest.approx(expected, abs=1e-4)
    assert np.all((scores >= 0) & (scores <= 100))
    monkeypatch.setenv("GENIMG_CLIP_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(cs, "ASSETS_DIR", tmp_path)
    monkeypatch.setattr(cs, "HUB_ID", "genimg-tests/no-clip")
    ok, reason = cs.clip_available()
    assert not ok and "GENIMG_CLIP_DIR" in reason


def test_api_evaluate_and_metrics(app_url, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    from genimg.scenes.grammar import eval_prompt_set, render

    monkeypatch.setenv("GENIMG_CACHE_DIR", str(tmp_path / "cache"))
    client = Client(app_url, verbose=False)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/evaluate", "/metrics"} <= set(endpoints)
    outputs = client.predict(["tiny-a", "tiny-b"], "a red circle on a blue background\na lighthouse", None, 0, "0",
                             False, None, None, 1, None, "default", ["sharpness", "entropy"], True,
                             api_name="/evaluate")
    gallery, table, _metric, scatter, bars, report_zip, report_html, preview, payload = outputs
    images = gallery["value"] if isinstance(gallery, dict) else gallery
    assert [item["caption"] for item in images] == ["tiny-a · p0 · seed 0", "tiny-b · p0 · seed 0",
                                                     "tiny-a · p1 · seed 0", "tiny-b · p1 · seed 0"]
    assert [row[0] for row in table["data"]] == ["tiny-a", "tiny-b"]
    assert payload["summary"]["tiny-a"]["metrics"]["sharpness"]["n"] == 2
    plotted = scatter["value"] if "value" in scatter else scatter
    assert len(plotted["data"]) == 2 and Path(report_zip).suffix == ".zip" and Path(report_html).is_file()
    assert "Per-model summary" in preview

    with pytest.raises(Exception, match="no prompts given"):
        client.predict(["tiny-a"], "  ", None, 0, "0", False, None, None, 1, None, "default", ["sharpness"], True,
                       api_name="/evaluate")

    path = tmp_path / "scene.png"
    render(eval_prompt_set()[0], 64).save(path)
    rows, result = client.predict(handle_file(str(path)), None, ["sharpness", "entropy"], False, api_name="/metrics")
    assert [r[0] for r in rows["data"]] == ["Sharpness", "Entropy"]
    assert result["metrics"]["entropy"]["value"] > 0
