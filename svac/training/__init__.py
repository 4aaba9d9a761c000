"""Training SVAC: typed training configs, losses, data pipeline, LoRA setup and resumable checkpoints.

The training loop itself is the recipe in ``train/`` (installed as ``svac.recipes``), started with
``svac train CONFIG [key=value ...]``.
"""
