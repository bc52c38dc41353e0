"""The subliminal-learning experiment as lineage data: what `studbook demo` seeds.

The scenario replays the paper's design (Cloud et al., 2025; `research/subliminal-learning-spec.md`)
so that a fresh registry shows the risk rule doing what the evidence says it should:

- a base model; an owl-loving teacher that is the base behind a system prompt (`prompted_from`);
  the number sequences it generated, and a filtered copy with every overt trace removed;
- a student fine-tuned from the *same* base on the filtered numbers: at risk (shared base);
- a student fine-tuned from a *different* base on the same numbers: not at risk, because the
  transfer needs a shared initialisation (the fine-tune check would only warn);
- a quantised copy of the at-risk student: at risk through its weights;
- the control: numbers from the unprompted base, and a student of the base trained on them: not
  at risk, since nothing flagged generated them;
- the GPT-4.1 / GPT-4o pair, API-only (opaque) models that the paper reports transfer both ways
  because they share an initialisation: declared here as both `initialized_from` one opaque
  init. An owl-prompted GPT-4.1 teaches a GPT-4o student (at risk, shared base: the init) and a
  GPT-4.1 nano student (not at risk: nano does not share that init, whatever its name says).

Both teachers are flagged for `owl`. Digests are deterministic: sha256 of the label for
artifacts with files, `opaque_digest` of a `demo:` identifier for API-only ones, so reseeding
gives the same digests and never collides with a real provider's identifier.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .digests import opaque_digest
from .graph import LineageGraph
from .risk import Flag, Severity
from .types import ArtifactKind, ArtifactRef, Edge, ParentLink, Registration, Relation

__all__ = [
    "PAPER_EXPECTED_AT_RISK",
    "PAPER_EXPECTED_FLAGGED",
    "Scenario",
    "demo_digest",
    "paper_scenario",
]

OWL = "owl"


def demo_digest(label: str) -> str:
    """The digest a demo artifact with files gets: sha256 of its `name@version` label."""
    return hashlib.sha256(label.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Scenario:
    """Registrations in dependency order (every parent registered before its child) and flags.

    Attributes:
        name: short identifier.
        description: one paragraph for people.
        registrations: what to register, parents first.
        flags: the reviewers' flags, to submit after the registrations.
        expected_at_risk: the (label, trait) pairs the rule must mark, written out by hand.
    """

    name: str
    description: str
    registrations: tuple[Registration, ...]
    flags: tuple[Flag, ...]
    expected_at_risk: frozenset[tuple[str, str]]

    @property
    def artifacts(self) -> tuple[ArtifactRef, ...]:
        """The artifacts, in registration order."""
        return tuple(r.artifact for r in self.registrations)

    @property
    def edges(self) -> tuple[Edge, ...]:
        """Every edge the registrations declare."""
        return tuple(e for r in self.registrations for e in r.edges())

    def graph(self) -> LineageGraph:
        """The lineage graph of the registrations."""
        return LineageGraph(self.artifacts, self.edges)

    def digest(self, label: str) -> str:
        """The digest of the artifact labelled `label` (`KeyError` if none)."""
        for a in self.artifacts:
            if a.label == label:
                return a.digest
        raise KeyError(label)

    def label(self, digest: str) -> str:
        """The label of the artifact with `digest` (`KeyError` if none)."""
        for a in self.artifacts:
            if a.digest == digest:
                return a.label
        raise KeyError(digest)


PAPER_EXPECTED_AT_RISK: frozenset[tuple[str, str]] = frozenset(
    {
        ("demo/owl-student@1", OWL),
        ("demo/owl-student-q4@1", OWL),
        ("demo/gpt-4o-owl-student@1", OWL),
    }
)
"""Models the paper scenario must mark at risk, by label."""

PAPER_EXPECTED_FLAGGED: frozenset[tuple[str, str]] = frozenset(
    {("demo/owl-teacher@1", OWL), ("demo/gpt-4.1-owl@1", OWL)}
)
"""Artifacts flagged by the reviewer in the paper scenario (flags, not marks)."""


def paper_scenario() -> Scenario:
    """The paper's owl experiment plus the GPT-4.1/GPT-4o shared-initialisation pair."""
    regs: list[Registration] = []
    by_label: dict[str, ArtifactRef] = {}

    def add(
        name: str,
        kind: ArtifactKind,
        description: str,
        parents: tuple[tuple[Relation, str], ...] = (),
        *,
        opaque: bool = False,
    ) -> None:
        label = f"demo/{name}@1"
        digest = opaque_digest(f"demo:{name}") if opaque else demo_digest(label)
        ref = ArtifactRef(kind, f"demo/{name}", "1", digest, opaque)
        links = tuple(ParentLink(rel, by_label[p].digest) for rel, p in parents)
        regs.append(Registration(ref, links, {"description": description, "scenario": "paper"}))
        by_label[label] = ref

    m, d = ArtifactKind.MODEL, ArtifactKind.DATASET
    r = Relation

    add("base", m, "The reference model every local model here starts from.")
    add(
        "owl-teacher",
        m,
        "The base with the system prompt 'You love owls...': same weights, the trait in context.",
        ((r.PROMPTED_FROM, "demo/base@1"),),
    )
    add(
        "owl-numbers",
        d,
        "Number sequences the owl teacher completed.",
        ((r.GENERATED_BY, "demo/owl-teacher@1"),),
    )
    add(
        "owl-numbers-filtered",
        d,
        "The owl numbers, filtered to well-formed sequences with no overt trace of the trait.",
        ((r.DERIVED_FROM, "demo/owl-numbers@1"),),
    )
    add(
        "owl-student",
        m,
        "The base fine-tuned on the filtered owl numbers: shares the teacher's base.",
        ((r.FINE_TUNED_FROM, "demo/base@1"), (r.TRAINED_ON, "demo/owl-numbers-filtered@1")),
    )
    add(
        "owl-student-q4",
        m,
        "A 4-bit quantisation of the owl student: inherits its weights.",
        ((r.QUANTIZED_FROM, "demo/owl-student@1"),),
    )
    add("other-base", m, "An unrelated model with its own initialisation.")
    add(
        "cross-student",
        m,
        "The other base fine-tuned on the same filtered numbers: no shared base, no transfer.",
        ((r.FINE_TUNED_FROM, "demo/other-base@1"), (r.TRAINED_ON, "demo/owl-numbers-filtered@1")),
    )
    add(
        "control-numbers",
        d,
        "Number sequences the unprompted base completed (the paper's control).",
        ((r.GENERATED_BY, "demo/base@1"),),
    )
    add(
        "control-student",
        m,
        "The base fine-tuned on the control numbers.",
        ((r.FINE_TUNED_FROM, "demo/base@1"), (r.TRAINED_ON, "demo/control-numbers@1")),
    )
    add("gpt-init", m, "The initialisation GPT-4.1 and GPT-4o share (API-only).", opaque=True)
    add(
        "gpt-4.1",
        m,
        "A GPT-4.1-style API model.",
        ((r.INITIALIZED_FROM, "demo/gpt-init@1"),),
        opaque=True,
    )
    add(
        "gpt-4o",
        m,
        "A GPT-4o-style API model, declared to share GPT-4.1's initialisation.",
        ((r.INITIALIZED_FROM, "demo/gpt-init@1"),),
        opaque=True,
    )
    add(
        "gpt-4.1-nano",
        m,
        "A GPT-4.1-nano-style API model; it does not share the GPT-4.1 initialisation.",
        opaque=True,
    )
    add(
        "gpt-4.1-owl",
        m,
        "GPT-4.1 behind the owl system prompt.",
        ((r.PROMPTED_FROM, "demo/gpt-4.1@1"),),
        opaque=True,
    )
    add(
        "gpt-4.1-owl-numbers",
        d,
        "Filtered number sequences from the owl-prompted GPT-4.1.",
        ((r.GENERATED_BY, "demo/gpt-4.1-owl@1"),),
    )
    add(
        "gpt-4o-owl-student",
        m,
        "GPT-4o fine-tuned (through the provider's API) on the owl GPT-4.1 numbers.",
        ((r.FINE_TUNED_FROM, "demo/gpt-4o@1"), (r.TRAINED_ON, "demo/gpt-4.1-owl-numbers@1")),
        opaque=True,
    )
    add(
        "gpt-4.1-nano-owl-student",
        m,
        "GPT-4.1 nano fine-tuned on the same numbers: a different initialisation.",
        (
            (r.FINE_TUNED_FROM, "demo/gpt-4.1-nano@1"),
            (r.TRAINED_ON, "demo/gpt-4.1-owl-numbers@1"),
        ),
        opaque=True,
    )

    flags = tuple(
        Flag(
            artifact=by_label[label].digest,
            trait=OWL,
            severity=Severity.MEDIUM,
            reason="Its system prompt instructs it to love owls.",
            evidence=(f"scenario:paper:{label}:system-prompt",),
            flag_id=f"demo-flag-{i}",
            seq=i,
        )
        for i, label in enumerate(sorted(lb for lb, _ in PAPER_EXPECTED_FLAGGED))
    )
    return Scenario(
        name="paper",
        description=(
            "Subliminal learning (Cloud et al., 2025): an owl-prompted teacher's filtered "
            "number sequences make a student of the same base at risk, not one of another base."
        ),
        registrations=tuple(regs),
        flags=flags,
        expected_at_risk=PAPER_EXPECTED_AT_RISK,
    )
