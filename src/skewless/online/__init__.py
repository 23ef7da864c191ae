"""The online store: versioned encoding (codec.py: keys and values; header.py, entries.py,
segments.py) and the Redis store (redis.py)."""
