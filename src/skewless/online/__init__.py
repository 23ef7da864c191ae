"""The online store: versioned encoding (codec.py: keys and values; header.py, entries.py,
codec_v1.py, segments.py) and the Redis store (redis.py)."""
