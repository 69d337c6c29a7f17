"""A dataset spec checked against the project's catalogs before any image is read.

``load_spec`` runs ``source_issues`` for specs in the project's ``lora_datasets/`` folder (and ``validate``
for any spec), so a source catalog that does not exist, an ``entries`` glob that matches nothing, or
captions that would drop the trigger are named errors before the Dagster step, not a failure inside it.
"""

from __future__ import annotations

from difflib import get_close_matches
from pathlib import Path

from diffusion_assets import paths
from diffusion_assets.catalog.load import CatalogError, load_catalog, placeholders, template_problems
from diffusion_assets.datasets.load import SpecIssue
from diffusion_assets.datasets.spec import DatasetSpec


def source_issues(file: str, spec: DatasetSpec, prompts_dir: Path, data_root: Path) -> list[SpecIssue]:
    """What the spec asks of its sources that they cannot give, known before any image is read.

    - ``sources.<i>.catalog``: neither ``<prompts>/<name>.yaml`` nor generated images of that name exist;
    - ``filters.entries.<j>``: the glob matches no entry id of any source catalog (ids come from the
      catalog files, expanded; for a catalog whose file is gone, from its generation manifests);
    - ``trigger`` / ``captions.template``: with ``placement: none`` and captions made from prompts, a
      caption of a trigger source would lack the trigger word, or one of a prior source would hold it.
    """
    issues: list[SpecIssue] = []
    files = {p.stem: p for p in paths.catalog_files(prompts_dir)} if prompts_dir.is_dir() else {}
    catalogs: dict[str, object] = {}
    ids: dict[str, list[str]] = {}
    for index, source in enumerate(spec.sources):
        name = source.catalog
        if name in files:
            try:
                catalogs[name] = load_catalog(files[name])
            except CatalogError:
                continue  # the catalog's own validation reports it; its images may still exist
            ids[name] = _expanded_ids(catalogs[name])
            continue
        generated = _generated_ids(data_root, name)
        if generated is None:
            close = get_close_matches(name, files, n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            known = ", ".join(sorted(files)) or "none"
            issues.append(
                SpecIssue(
                    file,
                    None,
                    f"sources.{index}.catalog",
                    f"catalog '{name}' does not exist: no {prompts_dir / name}.yaml and no generated images of it "
                    f"under {data_root}",
                    f"{guess}catalogs in {prompts_dir}: {known}.",
                )
            )
        else:
            ids[name] = generated
    if issues or len(ids) < len(spec.sources):
        return issues  # entry globs can only be judged against every source
    issues += _glob_issues(file, spec, ids)
    issues += _trigger_issues(file, spec, catalogs)
    return issues


def _expanded_ids(loaded) -> list[str]:
    from diffusion_assets.catalog.expand import expand_entry  # noqa: PLC0415

    return [eid for entry in loaded.catalog.entries for eid, _ in expand_entry(loaded.catalog, entry)]


def _generated_ids(data_root: Path, catalog: str) -> list[str] | None:
    """Entry ids in the catalog's generation manifests (every date), or None when it has none."""
    from diffusion_assets.manifests import generation as gm  # noqa: PLC0415 - pyarrow, only when needed
    from diffusion_assets.manifests.io import PART_FILE, partition_path, read_table  # noqa: PLC0415

    folder = partition_path(data_root, gm.KIND, {"catalog": catalog}).parent
    parts = sorted(folder.glob(f"date=*/{PART_FILE}"))
    if not parts:
        return None
    return sorted({eid for part in parts for eid in read_table(part).column("entry_id").to_pylist()})


def _glob_issues(file: str, spec: DatasetSpec, ids: dict[str, list[str]]) -> list[SpecIssue]:
    from diffusion_assets.datasets.members import entry_pattern  # noqa: PLC0415 - the build's own rule

    every = [eid for values in ids.values() for eid in values]
    issues = []
    for index, glob in enumerate(spec.filters.entries or []):
        pattern = entry_pattern(glob)
        if not any(pattern.match(eid) for eid in every):
            close = get_close_matches(glob, every, n=3, cutoff=0.3) or every[:3]
            issues.append(
                SpecIssue(
                    file,
                    None,
                    f"filters.entries.{index}",
                    f"{glob!r} matches no entry id of the sources ({', '.join(ids)}); nothing would be selected by it",
                    f"`*` and `?` are wildcards, brackets are literal; ids look like: {', '.join(close)}.",
                )
            )
    return issues


def _trigger_issues(file: str, spec: DatasetSpec, catalogs: dict) -> list[SpecIssue]:
    """Captions that would drop the trigger, or give it to prior images, when they follow from prompts.

    Only captions made from the prompt are known before the captioner runs (``captions.source: prompt``,
    or a template that uses ``{prompt}`` and not ``{caption}``). A trigger source's caption can lack the
    word only with ``placement: none`` (prefix and suffix add it); a prior source's caption must never
    hold it. Entries left out by ``filters.entries`` do not count. The rule is the build's own check
    (``captioning.checks.check_trigger`` on ``members.final_caption``).
    """
    from diffusion_assets.captioning.checks import check_trigger  # noqa: PLC0415
    from diffusion_assets.catalog.expand import expand_entry  # noqa: PLC0415
    from diffusion_assets.datasets.members import Member, entry_pattern, final_caption  # noqa: PLC0415

    trigger, template = spec.trigger, spec.captions.template
    used = set(placeholders(template)) if template and not template_problems(template) else set()
    from_prompt = spec.captions.source == "prompt" or ("prompt" in used and "caption" not in used)
    if not trigger.word or not from_prompt:
        return []
    patterns = [entry_pattern(g) for g in spec.filters.entries or []]
    issues = []
    for index, source in enumerate(spec.sources):
        loaded = catalogs.get(source.catalog)
        if loaded is None or (not source.prior and trigger.placement != "none"):
            continue
        wrong = []
        for entry in loaded.catalog.entries:
            for eid, combo in expand_entry(loaded.catalog, entry):
                if patterns and not any(p.match(eid) for p in patterns):
                    continue
                prompt = entry.prompt.format(**combo)
                member = Member(
                    "", source.catalog, "", eid, prompt, "", "", caption=prompt, prior=source.prior
                )
                text = final_caption(member, spec)
                if (not check_trigger([(eid, text)], trigger.word)) == source.prior:
                    wrong.append((eid, text))
        if not wrong:
            continue
        eid, text = wrong[0]
        if source.prior:
            field = "captions.template" if template else f"sources.{index}.prior"
            message = (
                f"{len(wrong)} caption(s) of prior catalog '{source.catalog}' would contain the trigger "
                f"{trigger.word!r} (e.g. {text!r} from {eid}); prior images must not name the style"
            )
            hint = "remove the trigger from those prompts, or take the catalog out of the prior sources."
        else:
            field = "captions.template" if template else "trigger.placement"
            message = (
                f"{len(wrong)} caption(s) of catalog '{source.catalog}' would lack the trigger {trigger.word!r} "
                f"(e.g. {text!r} from {eid}), so the LoRA would not learn to tie its style to it"
            )
            hint = "add {trigger} to captions.template, or set trigger.placement: prefix or suffix."
        issues.append(SpecIssue(file, None, field, message, hint))
    return issues
