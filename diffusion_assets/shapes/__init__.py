"""The shapes world: synthetic images with exact ground truth, and the tiny models trained on it.

- ``world``     draws 32x32 images of a coloured shape on a background from ``(seed, index)``;
- ``captions``  turns attributes into captions and back (``caption``, ``parse_caption``);
- ``checker``   reads the attributes back from any image, analytically (``read_image``, ``adherence``);
- ``tokenizer``, ``train_vae``, ``train_clip``, ``train_unet``, ``assemble``: the training stages;
- ``train``     runs them all (``train_shapes_tiny``); ``config`` holds their typed settings;
- ``evaluate``  scores a pipeline folder's prompt adherence (``evaluate_adherence``).

No module here imports Dagster.
"""
