"""LoRA training datasets: specs in ``lora_datasets/``, member selection, and immutable versioned builds."""
