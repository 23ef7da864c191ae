"""Plans: the difference between the repo and the registry, as a list of stages."""

from skewless.plan.apply import apply_plan
from skewless.plan.diff import check_sources, make_plan
from skewless.plan.explain import explain
from skewless.plan.rollback import (
    Rematerialization,
    RepoDrift,
    Rollback,
    plan_rollback,
    repo_drift,
)
from skewless.plan.stages import AddObject, Plan, RemoveObject, Stage, UpdateObject

__all__ = [
    "AddObject",
    "Plan",
    "Rematerialization",
    "RemoveObject",
    "RepoDrift",
    "Rollback",
    "Stage",
    "UpdateObject",
    "apply_plan",
    "check_sources",
    "explain",
    "make_plan",
    "plan_rollback",
    "repo_drift",
]
