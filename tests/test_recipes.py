"""Named recipes (`train --config gpu`): what they hold, how --config resolves them."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import SHARED, TINY

from pianogenie import recipes
from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.model import contour_final, load_checkpoint

STAGE1 = SHARED / "runs" / "gpu-large-batch" / "stage1.pt"
STAGE2 = SHARED / "runs" / "gpu-large-batch" / "stage2.pt"
# What the shipped model's third stage (its velocity head, trained on frozen keys) set for itself
VELOCITY_STAGE = {
    "batch_size",
    "lr",
    "lr_warmup_steps",
    "loss_contour_multiplier",
    "max_num_steps",
    "eval_frequency",
    "summarize_frequency",
    "velocity_bins",
    "velocity_hidden",
    "loss_velocity_multiplier",
    "train_keys",
}


def test_gpu_recipe_is_the_two_stages_in_one_run():
    one, stage1, stage2 = recipes.recipe("gpu"), recipes.recipe("gpu-stage1"), recipes.recipe("gpu-contour")
    # stage 1's batch and learning rate, run longer, with stage 2's contour weight over its last 35 %
    assert (one.batch_size, one.lr, one.lr_warmup_steps) == (stage1.batch_size, stage1.lr, stage1.lr_warmup_steps)
    assert one.loss_contour_multiplier == 1 and one.loss_contour_multiplier_final == stage2.loss_contour_multiplier
    switch = [s for s in range(one.max_num_steps) if contour_final(s, one)]
    assert switch[0] == 13_000 and switch[-1] == one.max_num_steps - 1 == 19_999
    assert not any(contour_final(s, stage1) for s in range(stage1.max_num_steps))


def test_gpu_recipes_are_the_shipped_models_two_stages():
    assert {"gpu", "gpu-contour", "gpu-stage1"} <= set(recipes.names())  # others may come
    # The shipped checkpoint's cfg is its last stage: a velocity head trained on stage 2's frozen keys
    shipped = Config.from_dict(load_checkpoint("pianogenie/pretrained/model.pt")["cfg"])
    assert not shipped.train_keys and shipped.velocity_bins > 0
    contour = recipes.recipe("gpu-contour")
    keys_only = lambda cfg: {k: v for k, v in dataclasses.asdict(cfg).items() if k not in VELOCITY_STAGE}
    assert keys_only(contour) == keys_only(shipped)
    if not (STAGE1.is_file() and STAGE2.is_file()):
        pytest.skip(f"shared data not available: {STAGE1} or {STAGE2} is absent")
    assert recipes.recipe("gpu-stage1") == Config.from_dict(load_checkpoint(STAGE1)["cfg"])
    assert contour == Config.from_dict(load_checkpoint(STAGE2)["cfg"])


def test_every_recipe_explains_itself_and_sets_only_real_keys():
    for name in recipes.names():
        assert len(recipes.about(name)) > 40
        cfg = recipes.recipe(name)
        assert cfg != Config()  # it changes something
        assert dataclasses.asdict(cfg).keys() == dataclasses.asdict(Config()).keys()


def test_config_takes_a_recipe_name_or_a_file(notes_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(["train", "--data", str(notes_file), "--run-dir", str(run), "--config", "cpu", *TINY, "--max_num_steps=2"])
        == 0
    )
    cfg = Config.load(run / "cfg.json")
    assert (cfg.lr, cfg.lr_warmup_steps, cfg.batch_size) == (1e-3, 2, 4)  # recipe, then overrides on top
    # a file still wins: this one is the run's own config, under a name that is also a recipe's
    (tmp_path / "gpu").write_text((run / "cfg.json").read_text())
    assert recipes.load_config(tmp_path / "gpu") == cfg
    assert main(["train", "--data", str(notes_file), "--run-dir", str(tmp_path / "r2"), "--config", "gpx"]) == 2
    assert f"no recipe of that name (recipes: {', '.join(recipes.names())})" in capsys.readouterr().err
    assert main(["train", "--data", str(notes_file), "--run-dir", str(tmp_path / "r2"), "--config", "x.json"]) == 2
    assert "config file not found" in capsys.readouterr().err
