"""Hugging Face model trees: model cards' `base_model` and `datasets` as Studbook registrations.

The Hub already records a large part of the world's model lineage in model cards: YAML front
matter with `base_model` (one id or a list) and `base_model_relation` (`finetune`, `adapter`,
`merge`, `quantized`), and `datasets`. This module reads cards from local files only (a model
folder, a folder of cards, or a Hugging Face cache) with the Hub's own parser
(`huggingface_hub.ModelCard`, imported inside the functions that need it) and turns them into a
plan of signed registrations; it never touches the network.

Relations. `finetune` -> `fine_tuned_from`, `adapter` -> `adapter_of`, `merge` -> `merged_from`,
`quantized` -> `quantized_from`; `datasets` -> `trained_on`. A card without a relation gets the
one the Hub infers: several base models are a merge; an `adapter_config.json` beside the card is
an adapter; GGUF files, a `quantization_config` in `config.json`, a `quantize_config.json`, or
GPTQ/AWQ/EXL2 weights or tags are a quantisation; anything else is a fine-tune. An unknown
relation or malformed YAML skips that card, with the reason, and the rest of the batch goes on.

Identity (the design choice). A Hub repository's weights are not on this machine when only its
card is, so every Hub id becomes an artifact whose digest is derived from the id alone:
`hf_digest("org/name")` = `opaque_digest("hf:org/name")`, named `hf:org/name`, version `hub`
(models are marked opaque; datasets, which cannot be opaque, carry `"content": "none"` in their
metadata). Because the digest is a function of the id, every card that names the same base
connects to the same node, whoever imports it and in whatever order, with no lookup. Real bytes
claim such a node with an edge rather than by replacing it: a model folder whose weights are here
is registered with its real content digest as `hf:org/name@<revision or "local">`,
`initialized_from` the `hf:` node (the DESIGN's "copied checkpoint": same weights), and anyone
registering the real weights later declares the same edge (`claim_link`). Risk then flows both
ways it must: a flag on the Hub node reaches the real model (weights parent), and the real model
shares a base with every model the Hub tree derives from that node.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from .digests import opaque_digest
from .errors import LineageError
from .types import ArtifactKind, ArtifactRef, ParentLink, Registration, Relation

__all__ = [
    "HUB_VERSION",
    "CardPlan",
    "HfCard",
    "HfCardError",
    "HfRelation",
    "ImportPlan",
    "Skipped",
    "claim_link",
    "find_cards",
    "hf_dataset_digest",
    "hf_digest",
    "plan_import",
    "read_card",
]

HUB_VERSION = "hub"
MAX_CARD_BYTES = 1 << 20
MAX_BASES = 64
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_HUB_ID = re.compile(rf"^(?:{_PART}/)?{_PART}$")
_QUANT_TAGS = frozenset({"gguf", "gptq", "awq", "exl2", "bitsandbytes", "4-bit", "8-bit"})
_QUANT_SUFFIXES = (".gguf", ".ggml")
_QUANT_NAME_HINTS = ("gptq", "awq", "exl2")


class HfCardError(LineageError):
    """A card cannot be imported; `reason` says why, in words for the summary."""


class HfRelation(StrEnum):
    """`base_model_relation` values the Hub defines."""

    FINETUNE = "finetune"
    ADAPTER = "adapter"
    MERGE = "merge"
    QUANTIZED = "quantized"

    @property
    def relation(self) -> Relation:
        """The Studbook relation from the card's model to each base."""
        match self:
            case HfRelation.FINETUNE:
                return Relation.FINE_TUNED_FROM
            case HfRelation.ADAPTER:
                return Relation.ADAPTER_OF
            case HfRelation.MERGE:
                return Relation.MERGED_FROM
            case HfRelation.QUANTIZED:
                return Relation.QUANTIZED_FROM


def hf_digest(hub_id: str) -> str:
    """The digest of the Hub model `hub_id` when only its id is known (see module docstring)."""
    return opaque_digest(f"hf:{hub_id}")


def hf_dataset_digest(hub_id: str) -> str:
    """The digest of the Hub dataset `hub_id` (a separate namespace from models)."""
    return opaque_digest(f"hf:datasets/{hub_id}")


def claim_link(hub_id: str) -> ParentLink:
    """The parent link by which a registration of real weights claims the Hub model `hub_id`."""
    return ParentLink(Relation.INITIALIZED_FROM, hf_digest(check_hub_id(hub_id, "hub_id")))


def check_hub_id(value: object, where: str) -> str:
    """A Hub repository id (`org/name` or a legacy `name`), or `HfCardError` naming `where`."""
    if not isinstance(value, str) or not _HUB_ID.match(value.strip()):
        raise HfCardError(f"{where} is not a Hugging Face repository id: {value!r}", field=where)
    return value.strip()


@dataclass(frozen=True, slots=True)
class HfCard:
    """What one model card says, with where it was found."""

    path: Path
    hub_id: str
    revision: str | None
    bases: tuple[str, ...]
    relation: HfRelation | None
    inferred: bool
    datasets: tuple[str, ...]
    weights_dir: Path | None = None
    license: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A card or entry that was not imported, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class CardPlan:
    """The registrations one card needs, parents first."""

    card: HfCard
    registrations: tuple[Registration, ...]


@dataclass
class ImportPlan:
    """Registrations in dependency order (each parent before its children), and what was skipped.

    The same artifact (a base named by several cards) appears once.
    """

    registrations: list[Registration] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    cards: list[HfCard] = field(default_factory=list)


def _as_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise HfCardError(f"{where} must be a string or a list of strings", field=where)
    if len(items) > MAX_BASES:
        raise HfCardError(f"{where} lists more than {MAX_BASES} entries", field=where)
    return tuple(dict.fromkeys(check_hub_id(v, where) for v in items))


def _quantised(folder: Path | None, tags: Sequence[str]) -> bool:
    if {t.lower() for t in tags} & _QUANT_TAGS:
        return True
    if folder is None:
        return False
    names = [p.name.lower() for p in folder.iterdir()] if folder.is_dir() else []
    if any(n.endswith(_QUANT_SUFFIXES) for n in names) or "quantize_config.json" in names:
        return True
    if any(h in n for n in names for h in _QUANT_NAME_HINTS):
        return True
    config = folder / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and "quantization_config" in data
    return False


def read_card(
    path: Path, hub_id: str, *, revision: str | None = None, folder: Path | None = None
) -> HfCard:
    """Parse one model card file with the Hub's parser.

    Args:
        path: the card (`README.md` or a `.md` file).
        hub_id: the repository id the card describes.
        revision: the Hub revision (from a cache snapshot), if known.
        folder: the model folder beside the card, used to infer a missing relation and, when it
            holds weights of its own, to register them.

    Raises:
        HfCardError: unreadable, malformed YAML, an unknown relation or an invalid id.
    """
    from huggingface_hub import ModelCard

    hub_id = check_hub_id(hub_id, "hub_id")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HfCardError(f"cannot read card: {exc.strerror}", field="path") from exc
    if len(raw) > MAX_CARD_BYTES:
        raise HfCardError(f"card is larger than {MAX_CARD_BYTES} bytes", field="path")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HfCardError("card is not UTF-8", field="path") from exc
    try:
        card = ModelCard(text)
    except Exception as exc:  # the Hub parser raises ValueError or YAML errors; all are bad input
        raise HfCardError(f"malformed YAML metadata: {exc}".strip(), field="metadata") from exc
    data: dict[str, Any] = card.data.to_dict()  # type: ignore[no-untyped-call]  # untyped upstream
    bases = _as_list(data.get("base_model"), "base_model")
    datasets = _as_list(data.get("datasets"), "datasets")
    raw_rel = data.get("base_model_relation")
    tags = data.get("tags") or []
    if not isinstance(tags, list):
        tags = [tags]
    tags = [str(t) for t in tags]
    relation: HfRelation | None
    inferred = False
    if raw_rel is not None:
        try:
            relation = HfRelation(str(raw_rel).strip().lower())
        except ValueError as exc:
            known = ", ".join(r.value for r in HfRelation)
            raise HfCardError(
                f"unknown base_model_relation {raw_rel!r} (expected one of {known})",
                field="base_model_relation",
            ) from exc
        if not bases:
            raise HfCardError(
                "base_model_relation is set but base_model is missing", field="base_model"
            )
    elif not bases:
        relation = None
    else:
        inferred = True
        if len(bases) > 1:
            relation = HfRelation.MERGE
        elif folder is not None and (folder / "adapter_config.json").is_file():
            relation = HfRelation.ADAPTER
        elif _quantised(folder, tags):
            relation = HfRelation.QUANTIZED
        else:
            relation = HfRelation.FINETUNE
    if hub_id in bases:
        raise HfCardError(f"{hub_id} names itself as its base model", field="base_model")
    if not bases and not datasets:
        raise HfCardError("the card declares neither base_model nor datasets", field="base_model")
    weights = folder if folder is not None and _has_weights(folder, path) else None
    lic = data.get("license")
    license_id = lic.strip()[:100] if isinstance(lic, str) and lic.strip() else None
    return HfCard(path, hub_id, revision, bases, relation, inferred, datasets, weights, license_id)


def _has_weights(folder: Path, card: Path) -> bool:
    """True when the folder holds model files of its own (not just the card), none a link."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    others = [p for p in entries if p.name not in {card.name, ".git", ".gitattributes"}]
    return bool(others) and not any(p.is_symlink() for p in others)


def _hub_id_from_name(name: str, parent: str | None) -> str | None:
    if name.startswith("models--"):
        name = name[len("models--") :]
    if "--" in name:
        org, _, rest = name.partition("--")
        return f"{org}/{rest}"
    if parent:
        return f"{parent}/{name}"
    return name


def _snapshots(repo: Path) -> list[tuple[Path, str]]:
    """(snapshot folder, revision) of a cache repo: the `refs/main` one, else every snapshot."""
    snaps = repo / "snapshots"
    main = repo / "refs" / "main"
    if main.is_file():
        rev = main.read_text(encoding="utf-8").strip()
        if (snaps / rev).is_dir():
            return [(snaps / rev, rev)]
    if not snaps.is_dir():
        return []
    return sorted((p, p.name) for p in snaps.iterdir() if p.is_dir())


def find_cards(
    paths: Iterable[str | Path],
) -> tuple[list[tuple[Path, str, str | None, Path | None]], list[Skipped]]:
    """Locate model cards under `paths`.

    Accepts a model folder (holding `README.md`), a card file, a folder of cards (`org--name.md`
    files or model folders), a Hugging Face cache repository (`models--org--name`) or a cache
    root holding such repositories (every `snapshots/<revision>`; `refs/main`'s when present).

    Returns:
        (card path, hub id, revision, model folder) for each card found, and what was skipped.
    """
    found: list[tuple[Path, str, str | None, Path | None]] = []
    skipped: list[Skipped] = []

    def model_folder(folder: Path, hub: str | None, rev: str | None) -> None:
        card = folder / "README.md"
        if hub is None:
            skipped.append(Skipped(str(folder), "cannot tell the repository id from the path"))
        elif card.is_file():
            found.append((card, hub, rev, folder))
        else:
            skipped.append(Skipped(str(folder), "no README.md model card"))

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            skipped.append(Skipped(str(p), "no such file or directory"))
        elif p.is_file():
            found.append((p, _hub_id_from_name(p.stem, None) or p.stem, None, None))
        elif p.name.startswith("models--"):
            hub = _hub_id_from_name(p.name, None)
            snaps = _snapshots(p)
            if not snaps:
                skipped.append(Skipped(str(p), "cache repository without snapshots"))
            for snap, rev in snaps:
                model_folder(snap, hub, rev)
        elif any(c.name.startswith("models--") for c in p.iterdir() if c.is_dir()):
            for repo in sorted(c for c in p.iterdir() if c.name.startswith("models--")):
                hub = _hub_id_from_name(repo.name, None)
                for snap, rev in _snapshots(repo):
                    model_folder(snap, hub, rev)
        elif p.resolve().parent.name == "snapshots" and p.resolve().parent.parent.name.startswith(
            "models--"
        ):  # one snapshot of a cache repository: models--org--name/snapshots/<revision>
            model_folder(p, _hub_id_from_name(p.resolve().parent.parent.name, None), p.name)
        elif (p / "README.md").is_file():
            model_folder(p, _hub_id_from_name(p.resolve().name, p.resolve().parent.name), None)
        else:
            for child in sorted(p.iterdir()):
                if child.is_file() and child.suffix.lower() == ".md":
                    found.append(
                        (child, _hub_id_from_name(child.stem, None) or child.stem, None, None)
                    )
                elif child.is_dir():
                    nested = sorted(g for g in child.iterdir() if g.is_dir())
                    if (child / "README.md").is_file():
                        model_folder(child, _hub_id_from_name(child.name, p.name), None)
                    else:  # an org folder holding model folders: org/name
                        for grand in nested:
                            model_folder(grand, f"{child.name}/{grand.name}", None)
    return found, skipped


def _hub_model(
    hub_id: str, *, parents: tuple[ParentLink, ...] = (), meta: dict[str, Any]
) -> Registration:
    ref = ArtifactRef(
        ArtifactKind.MODEL, f"hf:{hub_id}", HUB_VERSION, hf_digest(hub_id), opaque=True
    )
    return Registration(ref, parents, {"source": "huggingface", "hub_id": hub_id, **meta})


def _hub_dataset(hub_id: str) -> Registration:
    ref = ArtifactRef(
        ArtifactKind.DATASET, f"hf:datasets/{hub_id}", HUB_VERSION, hf_dataset_digest(hub_id)
    )
    return Registration(ref, (), {"source": "huggingface", "hub_id": hub_id, "content": "none"})


def plan_import(paths: Iterable[str | Path], *, weights_digest: Any = None) -> ImportPlan:
    """Read every card under `paths` and plan the registrations, parents first.

    Args:
        paths: what `find_cards` accepts.
        weights_digest: `callable(folder) -> digest` for model folders that hold their own
            weights (default `lineage.digests.artifact_digest`); its `DigestError` skips the
            weights, not the card.

    Returns:
        The plan: one registration per distinct artifact, in an order the registry accepts.
    """
    from .digests import artifact_digest
    from .errors import DigestError

    digest_of = weights_digest or artifact_digest
    plan = ImportPlan()
    located, skipped = find_cards(paths)
    plan.skipped.extend(skipped)
    cards: list[HfCard] = []
    for path, hub_id, revision, folder in located:
        try:
            cards.append(read_card(path, hub_id, revision=revision, folder=folder))
        except HfCardError as exc:
            plan.skipped.append(Skipped(str(path), exc.message))
    # One node per Hub id; a card's own node carries its parents.
    nodes: dict[str, Registration] = {}
    datasets: dict[str, Registration] = {}
    extra: list[Registration] = []
    own: set[str] = set()
    for card in cards:
        if card.hub_id in own:
            plan.skipped.append(
                Skipped(str(card.path), f"a second card for {card.hub_id} in this batch")
            )
            continue
        own.add(card.hub_id)
        plan.cards.append(card)
        parents: list[ParentLink] = []
        if card.relation is not None:
            parents += [ParentLink(card.relation.relation, hf_digest(b)) for b in card.bases]
        parents += [ParentLink(Relation.TRAINED_ON, hf_dataset_digest(d)) for d in card.datasets]
        meta: dict[str, Any] = {}
        if card.license:
            meta["license"] = card.license
        if card.revision:
            meta["revision"] = card.revision
        if card.relation is not None:
            meta["base_model_relation"] = card.relation.value
            meta["relation_inferred"] = card.inferred
        nodes[card.hub_id] = _hub_model(card.hub_id, parents=tuple(parents), meta=meta)
        for b in card.bases:
            nodes.setdefault(b, _hub_model(b, meta={}))
        for d in card.datasets:
            datasets.setdefault(d, _hub_dataset(d))
        if card.weights_dir is not None:
            try:
                real = digest_of(card.weights_dir)
            except DigestError as exc:
                plan.skipped.append(
                    Skipped(str(card.weights_dir), f"weights not registered: {exc.message}")
                )
            else:
                ref = ArtifactRef(
                    ArtifactKind.MODEL, f"hf:{card.hub_id}", card.revision or "local", real
                )
                extra.append(
                    Registration(
                        ref,
                        (claim_link(card.hub_id),),
                        {"source": "huggingface", "hub_id": card.hub_id, "claims": card.hub_id},
                    )
                )
    # Parents first: depth-first over the model nodes; a cycle among cards skips its members.
    order: list[Registration] = list(datasets.values())
    state: dict[str, int] = {}
    by_digest = {r.artifact.digest: h for h, r in nodes.items()}

    def visit(hub: str, trail: list[str]) -> bool:
        if state.get(hub) == 2:
            return True
        if state.get(hub) == 1:
            cycle = " -> ".join([*trail[trail.index(hub) :], hub])
            for h in trail[trail.index(hub) :]:
                state[h] = 3
            plan.skipped.append(Skipped(hub, f"cycle among base_model declarations: {cycle}"))
            return False
        if state.get(hub) == 3:
            return False
        state[hub] = 1
        ok = True
        for link in nodes[hub].parents:
            parent = by_digest.get(link.digest)
            if parent is not None and not visit(parent, [*trail, hub]):
                ok = False
        if state.get(hub) == 3 or not ok:
            state[hub] = 3
            return False
        state[hub] = 2
        order.append(nodes[hub])
        return True

    for hub in nodes:
        visit(hub, [])
    done = {r.artifact.digest for r in order}
    order += [r for r in extra if r.parents[0].digest in done]
    plan.registrations = order
    return plan
