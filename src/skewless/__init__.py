"""skewless: define features once; train and serve from the same definition.

The names exported here are the supported API; everything else is internal.
"""

from skewless.definitions import (
    DeltaSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileSource,
)
from skewless.errors import SkewlessError
from skewless.feature_store import FeatureStore
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

__all__ = [
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
    "SkewlessError",
    "String",
    "UnixTimestamp",
    "__version__",
]
