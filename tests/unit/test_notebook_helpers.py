"""The notebooks' helpers say what they will train, and for how long, before they train."""

import torch

from workbench.notebook import template_training_plan
from workbench.studies.mainjob import SMOKE


def test_the_template_plan_measures_a_step_and_trains_nothing(tmp_path):
    state = torch.get_rng_state()
    plan = template_training_plan(tmp_path / "template", settings=SMOKE)
    assert torch.equal(state, torch.get_rng_state())  # the caller's random stream is untouched
    assert plan["epochs"] == SMOKE.epochs and plan["steps"] >= 1 and plan["step_seconds"] > 0
    assert abs(plan["seconds"] - plan["epochs"] * plan["steps"] * plan["step_seconds"]) < 1e-9
    assert f"for {SMOKE.epochs} epoch(s)" in plan["text"] and (" s (" in plan["text"] or " min (" in plan["text"])
    assert not (tmp_path / "template").exists()  # a plan writes nothing
