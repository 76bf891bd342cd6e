"""Training data: HistoricalFeatures, lookups, the manifest and the feature schema."""
