"""Everything that measures and searches: engines, the pinned pool, the Optuna sweep."""
