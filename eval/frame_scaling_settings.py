"""Default settings of the frame-scaling study (``svac bench frames``, ``eval/frame_scaling.py``).

Apart from the study so that its report (``eval/scaling_report.py``) reads the target without
importing the study.
"""

DEFAULT_FRAMES: tuple[int, ...] = (5, 10, 20, 40, 80, 160)
DEFAULT_CLIP_LENS: tuple[int, ...] = (5, 10, 20)
MODES: tuple[str, ...] = ("astc", "uncompressed", "first_k")
DEFAULT_K_OBJECTS: tuple[int, ...] = (1, 2, 4)
#: The overhead-ratio target: end-to-end time at most 15 % above SAM-2 encoder + LLM prefill.
OVERHEAD_TARGET = 1.15
#: Query used for user videos, which come without expressions.
DEFAULT_EXPRESSION = "the object that moves the most"
#: Seed of the synthetic videos and of the random K-object prompts.
DEFAULT_SEED = 0
#: torch CPU threads during the study (steady timings on shared CPUs; see ``run_frame_scaling``).
DEFAULT_THREADS = 1
