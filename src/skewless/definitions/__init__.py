"""Definitions: frozen, validated data describing features. No I/O here."""

from skewless.definitions.aggregation import Aggregation
from skewless.definitions.entity import Entity
from skewless.definitions.feature_service import FeatureService, ServiceFeatures
from skewless.definitions.feature_view import FeatureView, FeatureViewProjection
from skewless.definitions.field import Field
from skewless.definitions.on_demand import (
    InputFeature,
    OnDemandFeatureView,
    OnDemandProjection,
    ViewInput,
)
from skewless.definitions.request_source import RequestSource
from skewless.definitions.schedule import Schedule
from skewless.definitions.sources import DeltaSource, FileSource, Source

AnyDefinition = Entity | FeatureView | OnDemandFeatureView | FeatureService

__all__ = [
    "Aggregation",
    "AnyDefinition",
    "DeltaSource",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "InputFeature",
    "OnDemandFeatureView",
    "OnDemandProjection",
    "RequestSource",
    "Schedule",
    "ServiceFeatures",
    "Source",
    "ViewInput",
]
