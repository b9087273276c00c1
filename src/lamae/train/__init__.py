"""Pretraining (``pretrain.py``) and its learning-rate schedule."""
