"""Unified representation (issue 17): top-N fine-tuning and one shared backbone serving many tasks."""

from .model import TaskTop, UnifiedModel, top_n_config

__all__ = ["TaskTop", "UnifiedModel", "top_n_config"]
