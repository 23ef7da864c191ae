"""Materialization runs: which rows each view's run takes, the Spark job per view, and the
record of every run in the registry."""

from skewless.materialize.runs import Materializer, OnlineTarget, applied_views

__all__ = ["Materializer", "OnlineTarget", "applied_views"]
