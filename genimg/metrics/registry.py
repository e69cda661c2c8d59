"""Every metric by id: what it means, which way is better, whether it can run here, how to run it.

One registry (:data:`METRICS`, the method contract of :mod:`genimg.methods`) for the Metrics
tab, ``python -m genimg metrics``, the Evaluate runner and its report, so all of them say the
same words. Kinds (``Metric.task``) and their ``run`` signatures:

- ``full-reference``: ``run(image, reference) -> float`` on uint8 RGB arrays of one size;
- ``no-reference``: ``run(image) -> float``;
- ``text-image``: ``run_batch(images, prompts) -> list[Score]`` (a value per image, or None
  with a note when the metric does not apply to that prompt);
- ``set``: ``run(...)`` on the feature vectors of a whole set of images (see each class).

Adding a metric: write its pure function, then register one object here (or in its own
module, with ``@METRICS.register``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from genimg.errors import GenimgError
from genimg.methods import Method, Registry
from genimg.metrics import full_reference as fr
from genimg.metrics import no_reference as nr
from genimg.metrics import perceptual

FULL_REFERENCE, NO_REFERENCE, TEXT_IMAGE, SET = "full-reference", "no-reference", "text-image", "set"

# Accepted spellings on the CLI/API.
ALIASES = {"ms-ssim": "ms_ssim", "msssim": "ms_ssim", "colorfulness": "colourfulness", "effnet": "effnet_distance",
           "feature_distance": "effnet_distance", "effnet-distance": "effnet_distance", "laplacian": "sharpness",
           "faithful": "faithfulness", "grammar": "faithfulness", "clipscore": "clip", "clip_score": "clip",
           "fid": "fd", "fd-effnet": "fd", "tifa": "vqa", "qa": "vqa", "vqa_accuracy": "vqa", "fd_effnet": "fd", "kid-effnet": "kid", "kid_effnet": "kid"}


@dataclass
class Score:
    """One text-image metric value: None (with a note) where the metric does not apply."""

    value: float | None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Metric(Method):
    """A metric as people read it: label, meaning, which way is better, the smallest image it takes."""

    better: str = "higher"       # "higher" or "lower"
    meaning: str = ""            # one line for people
    unit: str = ""
    min_side: int = 1

    @property
    def key(self) -> str:
        return self.id

    @property
    def needs_reference(self) -> bool:
        return self.task == FULL_REFERENCE

    def display(self, value: float) -> str:
        """The value as a person should read it ('∞' for identical images in PSNR)."""
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        digits = 4 if abs(value) < 10 else 2
        return f"{value:.{digits}f}" + (f" {self.unit}" if self.unit else "")

    def too_small(self, image: np.ndarray) -> str | None:
        """Why ``image`` is too small for this metric, or None when it is large enough."""
        if min(image.shape[:2]) >= self.min_side:
            return None
        return (f"{self.label} needs images at least {self.min_side}x{self.min_side}, "
                f"got {image.shape[1]}x{image.shape[0]}")


class ImageMetric(Metric):
    """A per-image metric over one pure function: ``fn(image)`` or ``fn(image, reference)``."""

    def __init__(self, id: str, label: str, task: str, better: str, meaning: str, fn: Callable[..., float],
                 available: Callable[[], tuple[bool, str]] | None = None, unit: str = "", min_side: int = 1):
        self.id, self.label, self.task, self.better, self.meaning = id, label, task, better, meaning
        self.fn, self._available, self.unit, self.min_side = fn, available, unit, min_side

    def availability(self) -> tuple[bool, str]:
        return self._available() if self._available is not None else (True, "")

    def run(self, image: np.ndarray, reference: np.ndarray | None = None) -> float:
        """The metric of uint8 RGB ``image`` (against ``reference`` for full-reference metrics)."""
        return float(self.fn(image, reference) if self.needs_reference else self.fn(image))


def _effnet() -> tuple[bool, str]:
    from genimg.metrics.features import effnet_available

    return effnet_available()


def _lpips() -> tuple[bool, str]:
    from genimg.metrics.features import lpips_available

    return lpips_available()


METRICS: Registry[Metric] = Registry("metric", aliases=ALIASES)

for _metric in (
    ImageMetric("psnr", "PSNR", FULL_REFERENCE, "higher", "pixel fidelity in dB; ∞ = identical, > 40 near-invisible "
                "differences, < 25 clearly visible", fr.psnr, unit="dB"),
    ImageMetric("ssim", "SSIM", FULL_REFERENCE, "higher", "structural similarity (Gaussian σ=1.5), 1 = identical; "
                "weights local structure over exact pixel values", fr.ssim, min_side=11),
    ImageMetric("ms_ssim", "MS-SSIM", FULL_REFERENCE, "higher", "SSIM over 5 scales (Wang 2003), 1 = identical; "
                "closer to perceived quality across viewing distances", fr.ms_ssim, min_side=fr.ms_ssim_min_side()),
    ImageMetric("mse", "MSE", FULL_REFERENCE, "lower", "mean squared pixel error in 0..255 units, 0 = identical", fr.mse),
    ImageMetric("effnet_distance", "EffNetLite0 feature distance", FULL_REFERENCE, "lower",
                "distance of ImageNet EfficientNet-Lite0 features (LPIPS-style, unweighted; not LPIPS), 0 = same "
                "features", perceptual.effnet_distance, _effnet, min_side=perceptual.MIN_SIDE),
    ImageMetric("lpips", "LPIPS (AlexNet)", FULL_REFERENCE, "lower", "learned perceptual distance, 0 = same; ~0.1 "
                "small, > 0.4 large differences", perceptual.lpips, _lpips, min_side=perceptual.MIN_SIDE),
    ImageMetric("brisque", "BRISQUE", NO_REFERENCE, "lower", "no-reference naturalness/distortion score, ~0..100; "
                "clean photos usually < 30", nr.brisque, nr.brisque_available, min_side=nr.BRISQUE_MIN_SIDE),
    ImageMetric("niqe", "NIQE", NO_REFERENCE, "lower", "no-reference distance from natural-image statistics; clean "
                "photos ~3..6", nr.niqe, nr.niqe_available, min_side=nr.NIQE_MIN_SIDE),
    ImageMetric("sharpness", "Sharpness", NO_REFERENCE, "higher", "variance of the Laplacian; more fine detail (or "
                "noise) = higher, compare only similar images", nr.sharpness, min_side=3),
    ImageMetric("colourfulness", "Colourfulness", NO_REFERENCE, "higher", "Hasler–Süsstrunk: 0 gray, ~15 slightly, "
                "~45 moderately, > 80 very colourful", nr.colourfulness),
    ImageMetric("entropy", "Entropy", NO_REFERENCE, "higher", "Shannon entropy of the luminance histogram, 0..8 bits",
                nr.entropy, unit="bits"),
):
    METRICS.register(_metric)


@METRICS.register
class Faithfulness(Metric):
    """Does the image show what a scene-grammar prompt asks? (the grammar's classical-vision evaluator)"""

    id, label, task, better = "faithfulness", "Faithfulness (grammar)", TEXT_IMAGE, "higher"
    meaning = "share of images passing every check the prompt asks (scene grammar's evaluator; 1 = all)"

    def applies(self, prompt: str) -> bool:
        """True when ``prompt`` is a scene-grammar prompt (the only kind this metric can check)."""
        from genimg.scenes.prompts import parse_prompt

        try:
            parse_prompt(prompt)
        except GenimgError:
            return False
        return True

    def run(self, image: Any, prompt: str) -> Score:
        """1.0 when every check the prompt asks passes, else 0.0; the checks in ``details``."""
        from genimg.scenes.evaluator import score_image

        if not self.applies(prompt):
            return Score(None, "prompt is outside the scene grammar (faithfulness applies to grammar prompts only)")
        try:
            checks = score_image(image, prompt)
        except GenimgError as exc:
            return Score(None, str(exc))
        return Score(1.0 if checks["all"] else 0.0, details=checks)

    def run_batch(self, images: Sequence[Any], prompts: Sequence[str]) -> list[Score]:
        return [self.run(image, prompt) for image, prompt in zip(images, prompts)]


@METRICS.register
class QuestionFaithfulness(Metric):
    """Question-based faithfulness (TIFA / DSG style): questions generated from the prompt, answered from the
    pixels by genimg's offline scene answerer, scored per question type (see :mod:`genimg.vqa.generation`)."""

    id, label, task, better = "vqa", "VQA accuracy (scene QA)", TEXT_IMAGE, "higher"
    meaning = ("share of questions generated from the prompt (colour, shape, count, position, background, relation) "
               "that genimg-scene-qa answers as the prompt says; per question type beside it")
    _answerer: Any = None

    def run(self, image: Any, prompt: str) -> Score:
        """The image's accuracy over its answered questions; ``details["types"]``: {type: [correct, answered]},
        ``details["questions"]``: each question, expected and given answer. None (with a note) when no
        question could be generated or answered."""
        from genimg.vqa.generation import questions_for_prompt, score_answers
        from genimg.vqa.scene_qa import SceneAnswerer

        if QuestionFaithfulness._answerer is None:
            QuestionFaithfulness._answerer = SceneAnswerer()
        questions = questions_for_prompt(prompt)
        if not questions:
            return Score(None, "no question could be generated from this prompt (it names no colour, count, "
                               "position or background)")
        try:
            result = score_answers(lambda q: self._answerer.answer(image, q), questions)
        except GenimgError as exc:
            return Score(None, str(exc))
        details = {"types": result.types, "questions": result.rows}
        if result.accuracy is None:
            reason = result.rows[0]["answer"].split(". ")[0] if result.rows else "no answers"
            return Score(None, f"the answerer could answer none of the {len(questions)} questions ({reason})", details)
        return Score(result.accuracy, details=details)

    def run_batch(self, images: Sequence[Any], prompts: Sequence[str]) -> list[Score]:
        return [self.run(image, prompt) for image, prompt in zip(images, prompts)]


@METRICS.register
class ClipScore(Metric):
    """CLIPScore where CLIP weights are present (see :mod:`genimg.metrics.clip_score`)."""

    id, label, task, better = "clip", "CLIP score", TEXT_IMAGE, "higher"
    meaning = "CLIPScore 100·max(cos(image, text), 0); only comparable within one CLIP model"
    batch = 32

    def availability(self) -> tuple[bool, str]:
        from genimg.metrics.clip_score import clip_available

        return clip_available()

    def run_batch(self, images: Sequence[Any], prompts: Sequence[str]) -> list[Score]:
        from genimg.metrics.clip_score import clip_score

        scores: list[Score] = []
        for start in range(0, len(images), self.batch):
            chunk = slice(start, start + self.batch)
            try:
                values = clip_score(list(images[chunk]), list(prompts[chunk]))
            except GenimgError as exc:
                scores.extend(Score(None, str(exc)) for _ in images[chunk])
                continue
            scores.extend(Score(float(v)) for v in values)
        return scores


class SetDistance(Metric):
    """FD or KID between generated images and references, on EfficientNet-Lite0 features."""

    task, better = SET, "lower"

    def __init__(self, id: str, label: str, meaning: str, fn_name: str):
        self.id, self.label, self.meaning, self._fn_name = id, label, meaning, fn_name

    def availability(self) -> tuple[bool, str]:
        return _effnet()

    def run(self, generated: np.ndarray, references: np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
        """The distance with its bootstrap interval, as a JSON-able dict (value, ci_low, ci_high, warning, ...)."""
        from genimg.metrics import set_level

        fn = getattr(set_level, self._fn_name)
        result = fn(generated, references, name=self.label, confidence=confidence).as_dict()
        result.update(label=self.label, better=self.better, ci_method="bootstrap percentile")
        return result


METRICS.register(SetDistance("fd", "FD-EffNetLite0", "Fréchet distance to grammar renders of the same prompts, "
                             "EfficientNet-Lite0 features (not Inception FID)", "fd_result"))
METRICS.register(SetDistance("kid", "KID-EffNetLite0", "kernel inception-style distance to grammar renders, "
                             "EfficientNet-Lite0 features (not Inception KID)", "kid_result"))


@METRICS.register
class Diversity(Metric):
    """Diversity across seeds of one prompt (mean pairwise cosine distance, near-duplicate rate)."""

    id, label, task, better = "diversity", "Diversity (EffNetLite0)", SET, "higher"
    meaning = "mean pairwise cosine distance of EffNetLite0 features across seeds of one prompt (0 = identical)"

    def availability(self) -> tuple[bool, str]:
        return _effnet()

    def run(self, features: np.ndarray) -> Any:
        """A DiversityResult for one set of feature vectors (e.g. the seeds of one prompt)."""
        from genimg.metrics.diversity import diversity_from_features

        return diversity_from_features(features)


def per_image(reference: bool | None = None) -> list[Metric]:
    """The per-image metrics (full- and no-reference); only those that fit ``reference`` when given."""
    kinds = {True: (FULL_REFERENCE, NO_REFERENCE), False: (NO_REFERENCE,), None: (FULL_REFERENCE, NO_REFERENCE)}
    return METRICS.where(lambda m: m.task in kinds[reference])


def canonical(name: str) -> str | None:
    """The metric id ``name`` means (ids and aliases), or None."""
    return METRICS.canonical(name) or METRICS.canonical(str(name).replace("-", "_"))


def metric_table(kinds: Sequence[str] = (FULL_REFERENCE, NO_REFERENCE)) -> list[dict[str, Any]]:
    """Every metric of ``kinds`` with its availability, for --help texts and the UI."""
    rows = []
    for m in METRICS.where(lambda m: m.task in kinds):
        ok, reason = m.availability()
        rows.append({"key": m.id, "label": m.label, "needs_reference": m.needs_reference, "better": m.better,
                     "meaning": m.meaning, "available": ok, "reason": reason, "kind": m.task})
    return rows
