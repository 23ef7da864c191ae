"""skewless: define features once; train and serve from the same definition.

The names exported here are the supported API; everything else is internal.
"""

import sys

from skewless.definitions import (
    Aggregation,
    DeltaSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    Schedule,
)
from skewless.errors import SkewlessError
from skewless.feature_store import FeatureStore
from skewless.offline.drift import SavedTrainingSet, WholeTable
from skewless.stats.drift import Thresholds
from skewless.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Feast's names skewless lacks: `from skewless import PushSource` says what to use
    # instead.
    from skewless.feast_names import IMPORTS, advice, missing_name, refusal  # noqa: PLC0415 - only on a miss

    detail = advice(IMPORTS, name, missing_name(name))
    if detail is None:
        raise AttributeError(f"module 'skewless' has no attribute {name!r}")
    raise refusal(name, detail, sys._getframe(1))


__all__ = [
    "Aggregation",
    "Array",
    "Bool",
    "Bytes",
    "DeltaSource",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "OnDemandFeatureView",
    "RequestSource",
    "SavedTrainingSet",
    "Schedule",
    "SkewlessError",
    "String",
    "Thresholds",
    "UnixTimestamp",
    "WholeTable",
    "__version__",
]
