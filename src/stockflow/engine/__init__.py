"""The processor: batches through the checkpoint, the state cache, the expiry sweeper, and
what a failure means."""
