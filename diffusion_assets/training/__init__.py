"""LoRA training, Dagster-free: ``lora.train_lora`` and what it is built from.

- ``config``: ``LoraTrainConfig``, ``LoraLineage``, ``adapter_id``;
- ``dataset``: the imagefolder reader and caption tag counts;
- ``cache``: VAE posteriors and text embeddings, encoded once per dataset version;
- ``families``: SD / SDXL / Flux targets, text conditioning and losses (min-SNR);
- ``checkpoints``, ``validation``, ``metadata`` (the adapter file and its header), ``result``;
- ``applies``: the "LoRA applies" check; ``synthetic``: a shapes-world dataset for tests and benchmarks.
"""
