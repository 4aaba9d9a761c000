"""Prompt templates shipped with svac (installed as the resource package ``svac.prompts``)."""
