"""Pretraining and distillation runs: recipes (`recipe.py`), the resolved plan (`plan.py`),
the model its objectives need (`models.py`), the held-out sample (`heldout.py`) and the run
itself on the shared trainer (`job.py`)."""

from bertforge.pretraining.job import PretrainOutcome, export, pretrain
from bertforge.pretraining.plan import PretrainPlan, plan_pretraining
from bertforge.pretraining.recipe import Recipe, load_recipe, packaged_recipes

__all__ = [
    "PretrainOutcome",
    "PretrainPlan",
    "Recipe",
    "export",
    "load_recipe",
    "packaged_recipes",
    "plan_pretraining",
    "pretrain",
]
