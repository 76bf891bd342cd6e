"""The application layer: config reading, inputs, backfills and Project workflows."""
