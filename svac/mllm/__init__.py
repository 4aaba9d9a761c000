"""The InternVL-style MLLM: tokens, tokenizer, chat templates, model building and hidden-state capture."""
