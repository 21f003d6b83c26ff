"""Evaluation: accuracy by shot group, and feature separability."""
