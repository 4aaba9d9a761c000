"""Special tokens of the InternVL image format and of svac's segmentation vocabulary.

``[SEG]`` asks for a mask (its last-layer hidden state prompts SAM-2, SVAC §3.4);
``<p>``/``</p>`` delimit the phrase a ``[SEG]`` refers to, ``<vp>``/``</vp>``
delimit visual prompts (Sa2VA §3). ``<img>``, ``</img>`` and ``<IMG_CONTEXT>``
are InternVL's image delimiters and per-token image placeholder.
"""

from __future__ import annotations

SEG_TOKEN = "[SEG]"
PHRASE_START = "<p>"
PHRASE_END = "</p>"
VPROMPT_START = "<vp>"
VPROMPT_END = "</vp>"

#: Tokens svac adds to every tokenizer (and for which it resizes the embeddings).
SVAC_SPECIAL_TOKENS = (SEG_TOKEN, PHRASE_START, PHRASE_END, VPROMPT_START, VPROMPT_END)

IMG_START = "<img>"
IMG_END = "</img>"
IMG_CONTEXT = "<IMG_CONTEXT>"

#: InternVL's image tokens (present in InternVL / Sa2VA tokenizers; added to svac's byte tokenizer).
IMAGE_TOKENS = (IMG_START, IMG_END, IMG_CONTEXT)
