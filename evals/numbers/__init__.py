"""The number-sequence experiment: prompts, filter, model loading, sampling, fine-tuning, scoring.

``prompts`` and ``filter`` are pure Python and safe to import anywhere; the other modules import
torch and transformers inside their functions.
"""
