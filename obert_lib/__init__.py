"""obert_lib: the library under the OBERT research notebooks.

Stages, in data-flow order, each with a `run(cfg)` entry point: `corpus`, `masking` (collator and
views), `model`, `pretraining`, `evaluation` (zero-shot), `finetuning`. Import the stage you need:
`from obert_lib import corpus`.
"""

__version__ = "0.1.0"
