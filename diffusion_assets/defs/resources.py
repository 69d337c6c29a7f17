"""Resources: where the project's files are, and the GPU that runs the models."""

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from diffusion_assets import paths
from diffusion_assets.devices import DeviceLeases

if TYPE_CHECKING:
    from diffusion_assets.models.provider import ModelProvider


class ProjectResource(dg.ConfigurableResource):
    """Folders of the project; empty strings mean the defaults of ``diffusion_assets.paths``."""

    root: str = Field("", description="Project root (catalog-relative paths resolve against catalogs).")
    prompts: str = Field("", description="Folder of prompt catalogs, watched by the catalog sensor.")
    data: str = Field("", description="Every output: images, manifests, datasets, adapters, reports.")
    models: str = Field("", description="Offline model mirror: `<models>/<hub id>/model_index.json`.")
    datasets: str = Field("", description="Folder of LoRA dataset specs (default `<root>/lora_datasets`).")

    def root_dir(self) -> Path:
        return Path(self.root) if self.root else paths.project_root()

    def prompts_dir(self) -> Path:
        return Path(self.prompts) if self.prompts else paths.prompts_dir()

    def data_dir(self) -> Path:
        return Path(self.data) if self.data else paths.data_root()

    def models_dir(self) -> Path:
        return Path(self.models) if self.models else paths.models_dir()

    def datasets_dir(self) -> Path:
        return Path(self.datasets) if self.datasets else paths.dataset_specs_dir()

    def dataset_spec_path(self, name: str) -> Path:
        for path in paths.catalog_files(self.datasets_dir()):
            if path.stem == name:
                return path
        raise FileNotFoundError(f"dataset '{name}' has no spec {self.datasets_dir()}/{name}.yaml")

    def catalog_path(self, name: str) -> Path:
        for path in paths.catalog_files(self.prompts_dir()):
            if path.stem == name:
                return path
        raise FileNotFoundError(f"catalog '{name}' has no file {self.prompts_dir()}/{name}.yaml")


class LeasedDevice(dg.ConfigurableResource):
    """Base of a resource with a ``device`` field: the device its run uses, leased on first use
    (``devices.lease``: on a host with several GPUs, concurrent runs each take a different one) and
    given back when Dagster tears the run's resources down, or when the process ends."""

    device: str = "auto"
    _leases: DeviceLeases | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._leases = DeviceLeases(f"run {context.run_id}" if context.run_id else "")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._leases is not None:
            self._leases.close()

    def leased_device(self, log=None) -> str:
        """``device`` resolved (``cuda:N``, ``mps`` or ``cpu``), holding a lease on it if a GPU.

        ``log`` (e.g. ``context.log.warning``) hears once who holds the GPUs when it has to wait.
        Raises what ``models.loading.resolve_device`` and ``devices.lease`` raise."""
        if self._leases is None:  # called outside a Dagster run (a direct invocation)
            self._leases = DeviceLeases()
        return self._leases.device(self.device, log)


class GpuResource(LeasedDevice):
    """The accelerator. One pipeline is loaded per step and reused for the whole partition.

    On unified-memory machines (NVIDIA DGX Spark, Apple silicon) CPU offload saves nothing: CPU and
    GPU share the same memory, so leave ``cpu_offload`` at ``none`` there.
    """

    device: str = Field(
        "auto",
        description="auto (cuda, then mps, then cpu), cuda, cuda:N, mps or cpu; with several GPUs, auto "
        "and cuda lease a free one per run (DIFFUSION_ASSETS_GPUS lists those lent).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on CUDA, float16 on MPS, float32 on CPU."
    )
    batch_size: int = Field(4, gt=0, description="Images per pipeline call.")
    attention_slicing: bool = Field(False, description="Lower peak memory at some speed cost.")
    vae_slicing: bool = Field(False, description="Decode a batch one image at a time.")
    vae_tiling: bool = Field(False, description="Decode large images in tiles.")
    cpu_offload: Literal["none", "model", "sequential"] = Field(
        "none", description="Offload idle components to CPU RAM (pointless on unified memory)."
    )
    compile: bool = Field(False, description="torch.compile the denoiser (slow first batch).")
    allow_download: bool = Field(False, description="Fetch missing weights from the hub at run time.")

    def provider(self, project: ProjectResource, log=None) -> "ModelProvider":
        """A provider that loads (once) and caches the pipelines this step needs, on the leased
        device (``leased_device``); torch loads here."""
        from diffusion_assets.models.loading import LoadOptions  # noqa: PLC0415
        from diffusion_assets.models.provider import ModelProvider  # noqa: PLC0415

        options = LoadOptions(
            device=self.leased_device(log),
            dtype=self.dtype,
            attention_slicing=self.attention_slicing,
            vae_slicing=self.vae_slicing,
            vae_tiling=self.vae_tiling,
            cpu_offload=self.cpu_offload,
            compile=self.compile,
        )
        return ModelProvider(
            options,
            models_dir=project.models_dir(),
            project_root=project.root_dir(),
            batch_size=self.batch_size,
            allow_download=self.allow_download,
        )
