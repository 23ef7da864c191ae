"""The batch engine: Spark and Delta Lake. The only package that imports pyspark or delta."""
