"""The ``image_captions`` asset: a caption per generated image, checked for the classic failures."""

from typing import Literal

import dagster as dg
from pydantic import Field

from diffusion_assets.captioning.spec import CaptionerSpec

from .conditions import captions_follow_images
from .generation import generated_images
from .partitions import generation_partitions, partitioned_check
from .resources import LeasedDevice, ProjectResource

CAPTION_CODE_VERSION = "captions-v1"


class CaptionerResource(LeasedDevice):
    """Which captioner writes captions: a transformers model (`model`), the shapes world's own tiny
    captioner (`tiny`), or the generation prompt itself (`prompt`)."""

    mode: Literal["model", "tiny", "prompt"] = Field("tiny", description="model | tiny | prompt")
    model: str | None = Field(None, description="A preset (blip-base, blip-large, ...), hub id or ./folder.")
    prompt: str | None = Field(None, description="BLIP's caption prefix or a VLM's instruction.")
    template: str = Field("{prompt}", description="prompt mode: the caption template.")
    max_new_tokens: int | None = Field(None, description="Unset: the preset's.")
    batch_size: int = Field(16, gt=0, description="Images per captioning call.")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps.")
    allow_download: bool = Field(False, description="Fetch missing weights from the hub at run time.")

    def spec(self, device: str | None = None) -> CaptionerSpec:
        """The captioner's spec; ``device`` overrides the field (the asset passes its leased one)."""
        return CaptionerSpec(
            mode=self.mode,
            model=self.model,
            prompt=self.prompt,
            template=self.template,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            device=device or self.device,
            allow_download=self.allow_download,
        )


@dg.asset(
    partitions_def=generation_partitions,
    deps=[generated_images],
    pool="gpu",
    automation_condition=captions_follow_images(),
    code_version=CAPTION_CODE_VERSION,
    group_name="captioning",
    kinds={"transformers", "parquet"},
    check_specs=[
        partitioned_check(
            "captions_not_empty",
            "image_captions",
            generation_partitions,
            description="No empty captions.",
        ),
        partitioned_check(
            "no_repeated_tokens",
            "image_captions",
            generation_partitions,
            description="No token 3+ times in a row ('a bald bald bald').",
        ),
        partitioned_check(
            "fits_text_encoder",
            "image_captions",
            generation_partitions,
            description="No caption longer than the 77-token CLIP limit.",
        ),
    ],
)
def image_captions(context: dg.AssetExecutionContext, captioner: CaptionerResource, project: ProjectResource):
    """A caption for every image of the partition, in data/manifests/captions/, recording the
    captioner id and weights hash. Images already captioned by the same captioner are kept."""
    from diffusion_assets.captioning.captioner import load_captioner  # noqa: PLC0415
    from diffusion_assets.captioning.checks import check_captions  # noqa: PLC0415
    from diffusion_assets.captioning.partition import caption_partition  # noqa: PLC0415
    from diffusion_assets.captioning.tokens import token_counter  # noqa: PLC0415
    from diffusion_assets.generation.partition import RunInfo  # noqa: PLC0415
    from diffusion_assets.previews import markdown_table  # noqa: PLC0415

    keys = context.partition_key.keys_by_dimension
    spec = captioner.spec(device=captioner.leased_device(context.log.warning))
    model = load_captioner(spec, project.models_dir(), project.root_dir())
    run = RunInfo(context.run_id, str(context.partition_key), CAPTION_CODE_VERSION)
    result = caption_partition(
        keys["catalog"], keys["date"], project.data_dir(), model, run, captioner.batch_size
    )
    report = check_captions(
        [(r["image_id"], r["caption"]) for r in result.rows],
        counter=token_counter(models_dir=project.models_dir()),
    )
    by_check = {
        name: [i.image_id for i in report.issues if i.check == name]
        for name in ("empty", "repeated_token", "too_long")
    }
    checks = {
        "captions_not_empty": "empty",
        "no_repeated_tokens": "repeated_token",
        "fits_text_encoder": "too_long",
    }
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(result.manifest_sha256),
        metadata={
            "rows": len(result.rows),
            "captioned": result.captioned,
            "kept": result.kept,
            "captioner": model.captioner_id,
            "manifest": dg.MetadataValue.path(str(result.manifest_path)),
            "preview": dg.MetadataValue.md(markdown_table(result.rows, ["image_id", "caption"])),
            "token_counter": report.token_note or "",
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=check,
                passed=not by_check[name],
                metadata={"failing": len(by_check[name]), "image_ids": str(by_check[name][:20])},
            )
            for check, name in checks.items()
        ],
    )
