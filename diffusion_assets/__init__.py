"""diffusion_assets: diffusion image generation as a Dagster data pipeline.

Plain modules (no Dagster imports) hold the logic; ``diffusion_assets.defs`` is the thin Dagster
layer and ``diffusion_assets.definitions`` the code location's ``Definitions``.
"""

__version__ = "0.1.0"
