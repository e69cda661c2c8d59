"""The sampler name other tools read: diffusers scheduler class + config -> AUTOMATIC1111's name.

A PNG's ``Sampler:`` must name the scheduler that actually ran, even when it was the model's
own default (written "Default" before, which nobody elsewhere can reproduce). The names follow
diffusers' own table of A1111 equivalents (docs, "Schedulers"): the Karras variants are the
same classes with ``use_karras_sigmas``; "DPM++ 2M SDE" is DPMSolverMultistep with the SDE
algorithm. Pipelines with no scheduler (the one-pass GAN and VAE) are ``one-step``.
"""

from __future__ import annotations

from typing import Any, Mapping

ONE_STEP = "one-step"

# diffusers class -> A1111 name when the config holds nothing that changes it.
_PLAIN: dict[str, str] = {
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "HeunDiscreteScheduler": "Heun",
    "LMSDiscreteScheduler": "LMS",
    "KDPM2DiscreteScheduler": "DPM2",
    "KDPM2AncestralDiscreteScheduler": "DPM2 a",
    "DPMSolverSDEScheduler": "DPM++ SDE",
    "DPMSolverSinglestepScheduler": "DPM++ 2S",
    "DDIMScheduler": "DDIM",
    "PNDMScheduler": "PLMS",
    "UniPCMultistepScheduler": "UniPC",
    "LCMScheduler": "LCM",
    "DDPMScheduler": "DDPM",
    "DEISMultistepScheduler": "DEIS",
    "TCDScheduler": "TCD",
    "FlowMatchEulerDiscreteScheduler": "Euler",
}
# Classes whose A1111 name gains " Karras" with use_karras_sigmas.
_KARRAS = {"EulerDiscreteScheduler", "HeunDiscreteScheduler", "LMSDiscreteScheduler", "KDPM2DiscreteScheduler",
           "KDPM2AncestralDiscreteScheduler", "DPMSolverSDEScheduler", "DPMSolverMultistepScheduler",
           "DPMSolverSinglestepScheduler"}


def a1111_sampler(class_name: str, config: Mapping[str, Any] | None = None) -> str:
    """The AUTOMATIC1111 sampler name of a diffusers scheduler ``class_name`` with ``config``.

    E.g. ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}) ->
    "DPM++ 2M"; with ``use_karras_sigmas`` -> "DPM++ 2M Karras". A class A1111 has no name for
    keeps its own name without the "Scheduler" suffix (never "Default"). Raises nothing.
    """
    config = dict(config or {})
    if class_name == "DPMSolverMultistepScheduler":
        order = int(config.get("solver_order", 2) or 2)
        sde = str(config.get("algorithm_type", "dpmsolver++")).startswith("sde")
        name = f"DPM++ {order}M" + (" SDE" if sde else "")
    else:
        name = _PLAIN.get(class_name) or class_name.removesuffix("Scheduler") or class_name
    if class_name in _KARRAS and config.get("use_karras_sigmas"):
        name += " Karras"
    return name


def sampler_of(pipe: Any) -> str:
    """The A1111 sampler name of the scheduler now set on ``pipe`` (``one-step`` when it has none)."""
    scheduler = getattr(pipe, "scheduler", None)
    if scheduler is None:
        return ONE_STEP
    return a1111_sampler(type(scheduler).__name__, getattr(scheduler, "config", None))


__all__ = ["ONE_STEP", "a1111_sampler", "sampler_of"]
