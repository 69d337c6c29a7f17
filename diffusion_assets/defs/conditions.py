"""Declarative automation: when captions, datasets, adapters and reports follow their inputs.

- ``image_captions`` follows new images: Dagster's ``eager()`` on every date (not only the latest),
  triggered by a new data version of its images partition.
- ``lora_dataset`` is built once every generation partition its spec names has captions of its
  current images, when the spec, or one of those partitions, changes. ``lora_dataset`` reads
  ``image_captions`` through an ``AllPartitionMapping``, so the built-in dependency conditions
  would wait for (and fire on) every catalog; the custom conditions here read the spec instead.
- ``lora_adapter`` and ``evaluation_report`` follow a new dataset version only where the spec sets
  ``auto_train: true`` (training is an expensive GPU run: it never starts by surprise).

Every trigger is reset by Dagster's initial evaluation, so a fresh instance requests nothing. The
custom conditions run in the code server (the automation sensor sets ``use_user_code_server``) and
read specs from the folder ``ProjectResource`` defaults to (``paths.dataset_specs_dir()``).
"""

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dagster as dg

from diffusion_assets.datasets.load import load_spec
from diffusion_assets.datasets.spec import DatasetSpec

from .partitions import generation_key, generation_partitions
from .resources import ProjectResource
from .source_files import DATASET_SPECS, recorded_hashes

GENERATED = dg.AssetKey("generated_images")
CAPTIONS = dg.AssetKey("image_captions")


@dataclass(frozen=True)
class DatasetSources:
    """The generation partitions one dataset spec reads now, according to the instance."""

    reads: dg.AssetKey
    """``image_captions``, or ``generated_images`` for a spec whose captions are the prompts."""
    partitions: frozenset[str]
    """``<catalog>|<date>`` keys: every generated date of a ``dates: all`` source, or the listed ones."""
    catalogs: frozenset[str]
    complete: bool
    """Every source has a generated date, and every date it lists is generated."""


def dataset_sources(spec: DatasetSpec, generated: Mapping[str, set[str]]) -> DatasetSources:
    """What ``spec`` reads, given the generated dates of each catalog (``datasets.members`` reads
    the same partitions from the manifests)."""
    partitions, complete = set(), True
    for source in spec.sources:
        done = generated.get(source.catalog, set())
        dates = done if source.dates == "all" else set(source.dates)
        complete = complete and bool(dates) and dates <= done
        partitions |= {str(generation_key(source.catalog, date)) for date in dates & done}
    return DatasetSources(
        reads=CAPTIONS if spec.captions.source == "captioner" else GENERATED,
        partitions=frozenset(partitions),
        catalogs=frozenset(s.catalog for s in spec.sources),
        complete=complete,
    )


def _specs(names: Iterable[str]) -> dict[str, DatasetSpec]:
    """The specs that load; an invalid or deleted one never runs (its `spec_valid` check says why)."""
    project, specs = ProjectResource(), {}
    for name in names:
        try:
            specs[name] = load_spec(project.dataset_spec_path(name)).spec
        except Exception:  # reported by the spec sensor and its check, not here on every tick
            continue
    return specs


def _catalog(partition_key: str) -> str:
    return generation_partitions.get_partition_key_from_str(partition_key).keys_by_dimension["catalog"]


def _generated_dates(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    dates = defaultdict(set)
    for key in instance.get_materialized_partitions(GENERATED):
        dims = generation_partitions.get_partition_key_from_str(key).keys_by_dimension
        dates[dims["catalog"]].add(dims["date"])
    return dates


def _result(context: dg.AutomationContext, partition_keys: set[str]) -> dg.AutomationResult:
    true_subset = context.candidate_subset.compute_intersection_with_partition_keys(partition_keys)
    return dg.AutomationResult(context, true_subset=true_subset)


class DatasetSourcesCaptioned(dg.AutomationCondition):
    """True for a dataset whose spec loads and whose every source partition is generated and
    captioned after its latest images, with no generation or captioning of its catalogs in progress."""

    name = "sources_captioned"
    description = (
        "Every generation partition the spec names is generated and captioned (captions newer than "
        "its images), and none of its catalogs is being generated or captioned"
    )

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        view, instance = context.asset_graph_view, context.asset_graph_view.instance
        specs = _specs(context.candidate_subset.expensively_compute_partition_keys())
        if not specs:
            return _result(context, set())
        generated = _generated_dates(instance)
        event = dg.DagsterEventType.ASSET_MATERIALIZATION
        images = instance.get_latest_storage_id_by_partition(GENERATED, event)
        captions = instance.get_latest_storage_id_by_partition(CAPTIONS, event)
        busy = set()
        for key in (GENERATED, CAPTIONS):
            everything = view.get_full_subset(key=key)
            for subset in (
                await view.compute_run_in_progress_subset(key=key, from_subset=everything),
                await view.compute_backfill_in_progress_subset(key=key, from_subset=everything),
            ):
                busy |= {_catalog(k) for k in subset.expensively_compute_partition_keys()}
        ready = set()
        for name, spec in specs.items():
            sources = dataset_sources(spec, generated)
            if not sources.complete or sources.catalogs & busy:
                continue
            if sources.reads == CAPTIONS and any(
                captions.get(p, -1) < images.get(p, 0) for p in sources.partitions
            ):
                continue
            ready.add(name)
        return _result(context, ready)


class DatasetSourcesUpdated(dg.AutomationCondition):
    """True for a dataset one of whose source partitions got a new data version since the previous
    tick: new captions, or new images where the spec captions with prompts."""

    name = "sources_updated"
    description = "A generation partition the spec names has new captions (new images for prompt captions)"

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        previous = context.previous_temporal_context
        if previous is None:  # the first tick takes stock
            return _result(context, set())
        view = context.asset_graph_view
        changed = {}
        for key in (GENERATED, CAPTIONS):
            subset = await view.compute_data_version_changed_since_temporal_context_subset(
                key=key, temporal_context=previous
            )
            changed[key] = subset.expensively_compute_partition_keys()
        if not any(changed.values()):  # a quiet tick reads no spec
            return _result(context, set())
        generated = _generated_dates(view.instance)
        specs = _specs(context.candidate_subset.expensively_compute_partition_keys())
        updated = set()
        for name, spec in specs.items():
            sources = dataset_sources(spec, generated)
            if sources.partitions & changed[sources.reads]:
                updated.add(name)
        return _result(context, updated)


class SpecEdited(dg.AutomationCondition):
    """True for a dataset whose spec's recorded hash (the dataset spec sensor's observation) differs
    from the one seen on the previous tick. Dagster's own update conditions see only
    materializations of an external asset such as ``lora_dataset_spec``, not its observations."""

    name = "spec_edited"
    description = "The dataset spec sensor recorded a new hash of the spec since the previous tick"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        hashes = recorded_hashes(context.asset_graph_view.instance, DATASET_SPECS)
        before = json.loads(context.cursor) if context.cursor else {}
        edited = {name for name, digest in hashes.items() if before.get(name, digest) != digest}
        true_subset = context.candidate_subset.compute_intersection_with_partition_keys(edited)
        return dg.AutomationResult(
            context, true_subset=true_subset, cursor=json.dumps(hashes, sort_keys=True)
        )


class SpecAutoTrains(dg.AutomationCondition):
    """True for a dataset whose spec loads and sets ``auto_train: true``."""

    name = "auto_train"
    description = "The dataset spec sets `auto_train: true`"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        specs = _specs(context.candidate_subset.expensively_compute_partition_keys())
        return _result(context, {name for name, spec in specs.items() if spec.auto_train})


def any_deps_changed() -> dg.AutomationCondition:
    """``any_deps_updated()``, counting only updates that changed a dependency's data version (a
    re-run that skips every existing image, or reuses a dataset version, starts nothing)."""
    return (
        dg.AutomationCondition.any_deps_updated()
        .replace("newly_updated", dg.AutomationCondition.data_version_changed())
        .with_label("any_deps_changed")
    )


def captions_follow_images() -> dg.AutomationCondition:
    """``eager()`` for every date of a catalog, on new images only."""
    return (
        any_deps_changed().since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("new images")


def dataset_follows_sources() -> dg.AutomationCondition:
    """A new spec, an edited spec or new source captions, once every source is captioned."""
    return (
        (dg.AutomationCondition.newly_missing() | SpecEdited() | DatasetSourcesUpdated()).since_last_handled()
        & ~dg.AutomationCondition.in_progress()
        & DatasetSourcesCaptioned()
    ).with_label("all sources captioned")


def follows_dataset_if_opted_in(blocking_checks: bool = False) -> dg.AutomationCondition:
    """``eager()`` on a new dataset version (or adapter), where the spec sets ``auto_train: true``;
    with ``blocking_checks``, only after the upstream's blocking checks passed."""
    condition = (
        (dg.AutomationCondition.newly_missing() | any_deps_changed()).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    )
    if blocking_checks:
        condition = condition & dg.AutomationCondition.all_deps_blocking_checks_passed()
    return (condition & SpecAutoTrains()).with_label("auto_train: new dataset version")
