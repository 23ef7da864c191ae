"""Render a Plan for people: one line per stage, data vs metadata-only changes."""

from __future__ import annotations

from skewless.plan.stages import AddObject, Plan, RemoveObject, UpdateObject

_KIND = {
    "entity": "entity",
    "feature_view": "feature view",
    "on_demand_feature_view": "on-demand feature view",
    "feature_service": "feature service",
}


def explain(plan: Plan) -> list[tuple[str, str]]:
    """(style, text) lines describing the plan; style is a rich style name."""
    if not plan.has_changes:
        return [("green", f"No changes: the registry of '{plan.project}' matches the repo.")]
    lines: list[tuple[str, str]] = []
    for stage in plan.stages:
        kind = _KIND[stage.kind]
        match stage:
            case AddObject(name=name):
                lines.append(("green", f"+ add {kind} '{name}'"))
            case UpdateObject(name=name, old=old):
                what = "data change" if stage.data_changed else "metadata only"
                fields = ", ".join(stage.changed_fields) or "parents"
                lines.append(
                    (
                        "yellow",
                        f"~ change {kind} '{name}' (v{old.version} -> v{old.version + 1}, "
                        f"{what}: {fields})",
                    )
                )
            case RemoveObject(name=name):
                lines.append(("red", f"- remove {kind} '{name}'"))
    views = plan.views_to_materialize
    if views:
        lines.append(("bold", "Needs (re-)materialization: " + ", ".join(sorted(views))))
    return lines
