"""Distortions: differentiable layers for training (``layers``) and real codecs for evaluation (``attacks``)."""
