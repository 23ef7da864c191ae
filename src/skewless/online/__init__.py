"""The online store: versioned encoding (codec.py) and the Redis store (redis.py)."""
