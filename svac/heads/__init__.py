"""Segmentation heads: the SVAC head and the classic R-VOS baselines (ReferFormer, ...)."""
