"""Everything that changes a model: tasks, batching, training, pruning, approximation.

Knows nothing of Optuna or of how models are timed.
"""
