"""Using a model: model files, the any-size tiled model wrapper, evaluation."""
