"""What users declare: entities, names, feature types (pure data, no Spark)."""
