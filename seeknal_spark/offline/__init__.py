"""The offline engine: the point-in-time join (validation, planner, kernel)."""
