"""Everything that changes a model: tasks, batching, training, pruning, export.

Knows nothing of Optuna or of how models are timed.
"""
