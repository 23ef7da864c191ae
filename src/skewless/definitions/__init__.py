"""Definitions: frozen, validated data describing features. No I/O here."""

from skewless.definitions.entity import Entity
from skewless.definitions.feature_service import FeatureService, ServiceFeatures
from skewless.definitions.feature_view import FeatureView, FeatureViewProjection
from skewless.definitions.field import Field
from skewless.definitions.sources import DeltaSource, FileSource, Source

AnyDefinition = Entity | FeatureView | FeatureService

__all__ = [
    "AnyDefinition",
    "DeltaSource",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "ServiceFeatures",
    "Source",
]
