"""Training: the LightningModule, the training loop, checkpoints and exact resume, callbacks, run summaries, schedules, losses."""
