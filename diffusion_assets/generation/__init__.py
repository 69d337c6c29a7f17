"""Image generation: schedulers, control images, the batch loop, PNG metadata, partitions."""
