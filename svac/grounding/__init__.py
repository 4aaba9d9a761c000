"""SAM-2 grounding: the mask decoder prompted by ``[SEG]`` embeddings, and memory propagation over a video."""
