"""The at-risk rule: which models may carry a flagged trait, and why.

Subliminal learning (Cloud et al., 2025) passes a teacher's trait to a student through generated
data with no visible trace of it, when and only when the two share a base model. Content filters
therefore cannot clear such data; only its origin can. This module turns reviewers' flags into
derived at-risk marks by DESIGN.md's rule, and is the reference the registry's SQL is tested
against, so it favours definitions that are easy to state over cleverness.

**The rule.** For a trait t, model M is *at risk* when M is neither flagged for t nor cleared for t
and either

- (data step) M -trained_on-> D -derived_from-> ... -> D' -generated_by-> G, G is flagged or at
  risk for t, and M shares a base with G (their weights-ancestor sets meet); or
- (weights step) M has a weights-lineage parent P (fine-tune, adapter, merge, quantisation,
  prompted variant, shared initialisation) that is flagged or at risk for t.

Both steps go from a model to one of its ancestors, and the graph is acyclic, so the least fixed
point of the two rules is reached in one pass over the models in topological order (parents
first). Risk therefore flows through students that become teachers and through fine-tunes of
at-risk models, to any depth.

**Explanations.** There is one mark per at-risk (model, trait), however many flagged models
reach it: the one explained by the least shortest edge path from M to a flagged model (its
`source`): fewest edges over the whole chain of steps, ties broken lexicographically by
`(digest arrived at, relation)` per edge as everywhere in `lineage.graph`. Shortest paths have
optimal substructure here, so a mark's path is always its first step followed by the path of the
mark (or flag) of its `via`. A data step also reports the nearest shared bases of M and G.

**Flags and clearances.** Both are statements about one (artifact, trait) carrying a sequence
number `seq` (the registry uses the transparency-log index, a total order of accepted
statements); for each (artifact, trait) the later statement wins:

- a flag is *in force* when no clearance of the same (artifact, trait) came after it, so a
  clearance lifts earlier flags and a later flag re-applies;
- an (artifact, trait) is *cleared* when its latest statement is a clearance. A cleared model is
  neither at risk nor a source for t: propagation stops *through* it, not through other paths (a
  student of a cleared teacher may still be at risk through another teacher, a merge of a
  cleared model through its other parent). Clearing a model does not change what it shares: it
  still counts as a base. A clearance stays in force until a later flag on the same artifact:
  it is evidence (an eval) about that artifact's behaviour, which new lineage elsewhere does not
  change;
- a flag and a clearance of the same (artifact, trait) with the same `seq` are refused
  (`LineageError`, field `seq`): their order would be undefined.

A model flagged for t is reported as a flag, never also as a mark for t.

**Datasets.** Flags on datasets are kept and reported (and the fine-tune check warns about them:
overt content), but they create no marks, and a clearance of a dataset stops nothing: the rule is
about who generated the data, which is exactly what inspecting the data cannot reveal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import assert_never

from .errors import LineageError
from .graph import Direction, LineageGraph, Reach, path_key
from .types import ArtifactKind, Edge, Relation, check_digest

__all__ = [
    "Change",
    "CheckReason",
    "CheckResult",
    "Clearance",
    "Flag",
    "MarkKind",
    "ReasonKind",
    "RiskMark",
    "RiskState",
    "Severity",
    "Verdict",
    "affected_by",
    "compute_risk",
    "fine_tune_check",
    "update_risk",
]


class Severity(StrEnum):
    """How serious a reviewer judges a flagged trait to be."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 (low) to 3 (critical), for sorting queues."""
        match self:
            case Severity.LOW:
                return 0
            case Severity.MEDIUM:
                return 1
            case Severity.HIGH:
                return 2
            case Severity.CRITICAL:
                return 3


def _check_statement(artifact: str, trait: str, seq: int) -> None:
    check_digest(artifact, field_name="artifact")
    if not trait or trait != trait.strip():
        raise LineageError(
            f"trait must be a non-empty name without surrounding spaces, got {trait!r}",
            field="trait",
        )
    if seq < 0:
        raise LineageError(f"seq must be 0 or more, got {seq}", field="seq")


@dataclass(frozen=True, slots=True)
class Flag:
    """A reviewer's statement that `artifact` carries `trait`.

    `seq` orders it against clearances of the same (artifact, trait): the later statement wins.
    Traits are compared exactly; normalising names is the caller's job.
    """

    artifact: str
    trait: str
    severity: Severity
    reason: str
    evidence: tuple[str, ...]
    flag_id: str
    seq: int

    def __post_init__(self) -> None:
        _check_statement(self.artifact, self.trait, self.seq)


@dataclass(frozen=True, slots=True)
class Clearance:
    """A reviewer's statement, with evidence (an eval), that `artifact` does not carry `trait`."""

    artifact: str
    trait: str
    reason: str
    evidence: tuple[str, ...]
    seq: int

    def __post_init__(self) -> None:
        _check_statement(self.artifact, self.trait, self.seq)


class MarkKind(StrEnum):
    """The first step of a mark's explanation: learned from data, or inherited weights."""

    DATA = "data"
    WEIGHTS = "weights"


@dataclass(frozen=True, slots=True)
class RiskMark:
    """`model` is at risk for `trait`, with the explanation.

    Attributes:
        model: the model at risk.
        trait: the flagged trait.
        kind: whether the first step is a data step or a weights step.
        source: the flagged model at the end of the chain.
        path: the least shortest edge path from `model` to `source` (child -> parent edges).
        shared_base: for a data step, the nearest shared bases of `model` and `via`; () for a
            weights step, where the weights are inherited and no base needs sharing.
        via: the teacher (data) or parent (weights) that passed the risk on: the model the first
            step arrives at.
    """

    model: str
    trait: str
    kind: MarkKind
    source: str
    path: tuple[Edge, ...]
    shared_base: tuple[str, ...]
    via: str


@dataclass(frozen=True)
class RiskState:
    """Flags and clearances in force, and the marks they imply. Everything sorted.

    Attributes:
        flags: flags in force, by (artifact, trait, seq, flag_id).
        clearances: for each cleared (artifact, trait), its latest clearance; by (artifact, trait).
        marks: one per at-risk (model, trait), by (model, trait).
    """

    flags: tuple[Flag, ...]
    clearances: tuple[Clearance, ...]
    marks: tuple[RiskMark, ...]
    _by_mark: dict[tuple[str, str], RiskMark] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _flagged: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False, hash=False)
    _cleared: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_mark", {(m.model, m.trait): m for m in self.marks})
        object.__setattr__(self, "_flagged", frozenset((f.artifact, f.trait) for f in self.flags))
        object.__setattr__(
            self, "_cleared", frozenset((c.artifact, c.trait) for c in self.clearances)
        )

    def mark(self, model: str, trait: str) -> RiskMark | None:
        """The mark of (model, trait), if at risk."""
        return self._by_mark.get((model, trait))

    def marks_for(self, model: str) -> tuple[RiskMark, ...]:
        """All marks of one model, by trait."""
        return tuple(m for m in self.marks if m.model == model)

    def at_risk(self) -> frozenset[tuple[str, str]]:
        """The (model, trait) pairs at risk."""
        return frozenset(self._by_mark)

    def is_flagged(self, artifact: str, trait: str) -> bool:
        """Whether a flag on (artifact, trait) is in force."""
        return (artifact, trait) in self._flagged

    def is_cleared(self, artifact: str, trait: str) -> bool:
        """Whether (artifact, trait)'s latest statement is a clearance."""
        return (artifact, trait) in self._cleared

    def carries(self, model: str, trait: str) -> bool:
        """Flagged or at risk: whether `model` passes `trait` on to students and children."""
        return (model, trait) in self._flagged or (model, trait) in self._by_mark

    def traits(self) -> tuple[str, ...]:
        """Traits with a flag in force, sorted."""
        return tuple(sorted({t for _, t in self._flagged}))


# --------------------------------------------------------------------------- computing risk


@dataclass(frozen=True, slots=True)
class _Step:
    """One way risk can reach a model: a weights edge or a data route to `via`."""

    kind: MarkKind
    via: str
    path: tuple[Edge, ...]
    shared_base: tuple[str, ...]


def _steps(graph: LineageGraph, model: str) -> tuple[_Step, ...]:
    """Every step of the rule out of `model`, whatever the flags: a weights step per weights
    edge, and a data step per teacher that shares a base (a teacher that does not can never
    pass a trait subliminally, so it is not a step at all)."""
    weights = [_Step(MarkKind.WEIGHTS, e.parent, (e,), ()) for e in graph.weights_parents(model)]
    data = [
        _Step(MarkKind.DATA, r.digest, r.path, graph.nearest_shared_bases(model, r.digest))
        for r in graph.teachers(model)
        if graph.shares_base(model, r.digest)
    ]
    return (*weights, *data)


_Key = tuple[str, str]


def _resolve(
    graph: LineageGraph, flags: Iterable[Flag], clearances: Iterable[Clearance]
) -> tuple[tuple[Flag, ...], tuple[Clearance, ...]]:
    """Flags in force and clearances in force, by the later-statement-wins rule."""
    latest_clear: dict[_Key, Clearance] = {}
    clear_seqs: dict[_Key, set[int]] = {}
    for c in sorted(set(clearances), key=_clearance_key):
        graph.node(c.artifact)
        latest_clear[(c.artifact, c.trait)] = c  # sorted by seq within a key: the last wins
        clear_seqs.setdefault((c.artifact, c.trait), set()).add(c.seq)
    by_key: dict[_Key, list[Flag]] = {}
    for f in sorted(set(flags), key=_flag_key):
        graph.node(f.artifact)
        key = (f.artifact, f.trait)
        if f.seq in clear_seqs.get(key, ()):
            raise LineageError(
                f"flag {f.flag_id!r} and a clearance of {f.artifact} for {f.trait!r} share "
                f"seq {f.seq}; their order is undefined",
                field="seq",
            )
        by_key.setdefault(key, []).append(f)
    in_force: list[Flag] = []
    for key, fs in by_key.items():
        cleared_at = latest_clear[key].seq if key in latest_clear else -1
        in_force.extend(f for f in fs if f.seq > cleared_at)
    flagged = {(f.artifact, f.trait) for f in in_force}
    cleared = [c for key, c in latest_clear.items() if key not in flagged]
    return (
        tuple(sorted(in_force, key=_flag_key)),
        tuple(sorted(cleared, key=_clearance_key)),
    )


def _flag_key(f: Flag) -> tuple[str, str, int, str, str, str, tuple[str, ...]]:
    return (f.artifact, f.trait, f.seq, f.flag_id, f.severity.value, f.reason, f.evidence)


def _clearance_key(c: Clearance) -> tuple[str, str, int, str, tuple[str, ...]]:
    return (c.artifact, c.trait, c.seq, c.reason, c.evidence)


def _propagate(
    graph: LineageGraph,
    flags: tuple[Flag, ...],
    clearances: tuple[Clearance, ...],
    recompute: frozenset[str] | None = None,
    previous: RiskState | None = None,
) -> tuple[RiskMark, ...]:
    """Apply the rule in topological order, trait by trait.

    With `recompute` and `previous`, only the models in `recompute` are evaluated; every other
    model keeps its mark from `previous` (see `update_risk`).
    """
    sources: dict[str, set[str]] = {}
    for f in flags:
        if graph.kind(f.artifact) is ArtifactKind.MODEL:
            sources.setdefault(f.trait, set()).add(f.artifact)
    cleared = {(c.artifact, c.trait) for c in clearances}
    order = [d for d in graph.topological_order() if graph.kind(d) is ArtifactKind.MODEL]
    steps: dict[str, tuple[_Step, ...]] = {}
    marks: list[RiskMark] = []
    for trait in sorted(sources):
        # Only descendants of a source can be at risk; skipping the rest keeps this linear-ish.
        reachable = set(sources[trait])
        for s in sources[trait]:
            reachable |= graph.descendants(s)
        best: dict[str, tuple[tuple[Edge, ...], str]] = {s: ((), s) for s in sources[trait]}
        for model in order:
            if model in sources[trait] or model not in reachable:
                continue
            if recompute is not None and previous is not None and model not in recompute:
                kept = previous.mark(model, trait)
                if kept is not None:
                    best[model] = (kept.path, kept.source)
                    marks.append(kept)
                continue
            if (model, trait) in cleared:
                continue
            if model not in steps:
                steps[model] = _steps(graph, model)
            chosen: tuple[_Step, tuple[Edge, ...], str] | None = None
            for step in steps[model]:
                upstream = best.get(step.via)
                if upstream is None:
                    continue
                path = (*step.path, *upstream[0])
                if chosen is None or path_key(path) < path_key(chosen[1]):
                    chosen = (step, path, upstream[1])
            if chosen is not None:
                step, path, source = chosen
                best[model] = (path, source)
                marks.append(
                    RiskMark(model, trait, step.kind, source, path, step.shared_base, step.via)
                )
    return tuple(sorted(marks, key=lambda m: (m.model, m.trait)))


def compute_risk(
    graph: LineageGraph, flags: Iterable[Flag], clearances: Iterable[Clearance] = ()
) -> RiskState:
    """Everything the flags and clearances imply on `graph`: the rule's least fixed point.

    The result depends only on the sets of artifacts, edges, flags and clearances, never on
    their order (duplicates collapse).

    Raises:
        LineageError: a flag or clearance names an unknown artifact (field `artifact`), or a flag
            and a clearance of one (artifact, trait) share a `seq` (field `seq`).
    """
    in_force, cleared = _resolve(graph, flags, clearances)
    return RiskState(in_force, cleared, _propagate(graph, in_force, cleared))


# --------------------------------------------------------------------- incremental updates

Change = Edge | Flag | Clearance
"""Something appended to the registry that may change marks."""


def _risk_dependents(graph: LineageGraph, model: str) -> set[str]:
    """`model` and every model with a chain of rule steps to it, ignoring flags and clearances.

    This is where a change of `model`'s status can be felt: weights children, and students that
    share a base with it, transitively.
    """
    seen = {model}
    frontier = [model]
    while frontier:
        here = frontier.pop()
        nxt = [e.child for e in graph.weights_children(here)]
        nxt += [r.digest for r in graph.students(here) if graph.shares_base(r.digest, here)]
        for m in nxt:
            if m not in seen:
                seen.add(m)
                frontier.append(m)
    return seen


def affected_by(graph: LineageGraph, changes: Iterable[Change]) -> frozenset[str]:
    """Models whose marks may differ once `changes` are applied: a superset, never a miss.

    `graph` is the graph *with* the changes applied. A mark depends only on the model's
    ancestors (statuses and structure), so:

    - a flag or clearance on a model X can only change the marks of X and of the models that
      reach X by rule steps (weights children; students sharing a base with it), transitively;
    - a flag or clearance on a dataset changes no mark (see the module docstring);
    - a new edge child -> parent can change the marks of `child` and its descendants (over all
      relations) only: nothing else gains a route, a teacher or a shared base.

    The registry can recompute just these models (see `update_risk`), in topological order,
    reading everyone else's stored marks.
    """
    out: set[str] = set()
    for change in changes:
        if isinstance(change, Edge):
            region = {change.child} | graph.descendants(change.child)
            out |= {d for d in region if graph.kind(d) is ArtifactKind.MODEL}
        elif isinstance(change, Flag | Clearance):
            match graph.kind(change.artifact):
                case ArtifactKind.MODEL:
                    out |= _risk_dependents(graph, change.artifact)
                case ArtifactKind.DATASET:
                    pass
        else:
            assert_never(change)
    return frozenset(out)


def update_risk(
    graph: LineageGraph,
    previous: RiskState,
    flags: Iterable[Flag],
    clearances: Iterable[Clearance],
    changes: Iterable[Change],
) -> RiskState:
    """`compute_risk(graph, flags, clearances)`, recomputing only the models `changes` affect.

    Args:
        graph: the graph with the changes applied.
        previous: the state before the changes (on the graph before them).
        flags, clearances: all statements, the changes included.
        changes: what was appended since `previous`.
    """
    in_force, cleared = _resolve(graph, flags, clearances)
    region = affected_by(graph, changes)
    return RiskState(in_force, cleared, _propagate(graph, in_force, cleared, region, previous))


# ---------------------------------------------------------------------------- fine-tune check


class Verdict(StrEnum):
    """What a fine-tune check concludes."""

    OK = "ok"
    WARN = "warn"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        """0 (ok), 1 (warn), 2 (block)."""
        match self:
            case Verdict.OK:
                return 0
            case Verdict.WARN:
                return 1
            case Verdict.BLOCK:
                return 2


class ReasonKind(StrEnum):
    """Why a fine-tune check is not `ok`."""

    BASE = "base"
    """The base is flagged or at risk for the trait: the fine-tune inherits it (block)."""
    TEACHER_SHARES_BASE = "teacher_shares_base"
    """A generator behind a dataset carries the trait and shares a base: subliminal (block)."""
    TEACHER_NO_SHARED_BASE = "teacher_no_shared_base"
    """A generator carries the trait but shares no base: overt content risk only (warn)."""
    FLAGGED_DATASET = "flagged_dataset"
    """A dataset in the data lineage is itself flagged: overt content risk (warn)."""

    @property
    def verdict(self) -> Verdict:
        """The verdict this reason alone leads to."""
        match self:
            case ReasonKind.BASE | ReasonKind.TEACHER_SHARES_BASE:
                return Verdict.BLOCK
            case ReasonKind.TEACHER_NO_SHARED_BASE | ReasonKind.FLAGGED_DATASET:
                return Verdict.WARN


@dataclass(frozen=True, slots=True)
class CheckReason:
    """One reason behind a fine-tune verdict.

    The fine-tuned model does not exist, so it has no digest and paths start one edge later
    than a mark's would: at the base (`BASE`) or at the candidate `dataset` (the others).

    Attributes:
        kind: what was found; `kind.verdict` is what it implies.
        trait: the trait concerned.
        dataset: the candidate dataset the route starts at; None for `BASE`.
        via: the base (`BASE`), the generator (teacher kinds) or the flagged dataset.
        source: the flagged artifact at the end of `path`.
        path: least shortest edge path from the base or `dataset` to `source`.
        shared_base: for `TEACHER_SHARES_BASE`, the nearest shared bases of the base and the
            generator (the fine-tune shares exactly its base's ancestors); () otherwise.
    """

    kind: ReasonKind
    trait: str
    dataset: str | None
    via: str
    source: str
    path: tuple[Edge, ...]
    shared_base: tuple[str, ...]

    @property
    def verdict(self) -> Verdict:
        """`kind.verdict`."""
        return self.kind.verdict


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict (the worst of its reasons', `ok` with none) and the reasons, sorted."""

    verdict: Verdict
    reasons: tuple[CheckReason, ...]


_PathKey = tuple[int, tuple[tuple[str, str], ...]]


def _virtual_key(first: tuple[str, str], path: tuple[Edge, ...]) -> _PathKey:
    """Path key of the hypothetical model's path: a virtual first step, then `path`."""
    length, keys = path_key(path)
    return (length + 1, (first, *keys))


def fine_tune_check(
    graph: LineageGraph, risk: RiskState, base: str, datasets: Iterable[str]
) -> CheckResult:
    """The verdict the at-risk rule would reach for fine-tuning `base` on `datasets`.

    The hypothetical model H would have `base` as weights parent and be trained on each dataset.
    Its weights ancestors are H plus `base`'s, so H shares a base with a generator exactly when
    `base` does. H would be at risk for t, hence `block`, if `base` is flagged or at risk for t,
    or a generator behind a dataset (through derived_from, any depth) is flagged or at risk for t
    and shares a base with `base`. A generator carrying t without a shared base, or a flagged
    dataset in the data lineage, is overt-content risk only: `warn`. Otherwise `ok`.

    For each (kind, trait, via) one reason is given, with the path H's mark would take (least
    shortest, counting the virtual first edge H -fine_tuned_from-> base or H -trained_on-> D).

    Args:
        graph: the lineage graph `risk` was computed on.
        risk: `compute_risk(graph, ...)`.
        base: the model to fine-tune.
        datasets: the datasets to train on.

    Raises:
        LineageError: `base` is not a known model or a dataset is not a known dataset.
    """
    if graph.kind(base) is not ArtifactKind.MODEL:
        raise LineageError(f"base {base} is a dataset, expected a model", field="base")
    candidates = sorted(set(datasets))
    for d in candidates:
        if graph.kind(d) is not ArtifactKind.DATASET:
            raise LineageError(f"{d} is a model, expected a dataset", field="datasets")

    best: dict[tuple[ReasonKind, str, str], tuple[_PathKey, CheckReason]] = {}

    def offer(reason: CheckReason, key: _PathKey) -> None:
        slot = (reason.kind, reason.trait, reason.via)
        held = best.get(slot)
        if held is None or key < held[0]:
            best[slot] = (key, reason)

    for trait in risk.traits():
        if risk.is_flagged(base, trait):
            offer(
                CheckReason(ReasonKind.BASE, trait, None, base, base, (), ()),
                _virtual_key((base, Relation.FINE_TUNED_FROM.value), ()),
            )
        elif (mark := risk.mark(base, trait)) is not None:
            offer(
                CheckReason(ReasonKind.BASE, trait, None, base, mark.source, mark.path, ()),
                _virtual_key((base, Relation.FINE_TUNED_FROM.value), mark.path),
            )

    traits = risk.traits()
    flags_on: dict[str, list[Flag]] = {}
    for f in risk.flags:
        flags_on.setdefault(f.artifact, []).append(f)
    for d in candidates:
        first = (d, Relation.TRAINED_ON.value)
        for gen in graph.generators(d):
            for trait in traits:
                if risk.is_flagged(gen.digest, trait):
                    tail: tuple[Edge, ...] = ()
                    source = gen.digest
                elif (mark := risk.mark(gen.digest, trait)) is not None:
                    tail, source = mark.path, mark.source
                else:
                    continue
                path = (*gen.path, *tail)
                if graph.shares_base(base, gen.digest):
                    kind = ReasonKind.TEACHER_SHARES_BASE
                    shared = graph.nearest_shared_bases(base, gen.digest)
                else:
                    kind, shared = ReasonKind.TEACHER_NO_SHARED_BASE, ()
                reason = CheckReason(kind, trait, d, gen.digest, source, path, shared)
                offer(reason, _virtual_key(first, path))
        lineage = graph.walk(d, Direction.UP, relations=(Relation.DERIVED_FROM,))
        for reach in (Reach(d, ()), *lineage):
            for f in flags_on.get(reach.digest, ()):
                reason = CheckReason(
                    ReasonKind.FLAGGED_DATASET, f.trait, d, f.artifact, f.artifact, reach.path, ()
                )
                offer(reason, _virtual_key(first, reach.path))

    reasons = sorted(
        (r for _, r in best.values()),
        key=lambda r: (-r.verdict.rank, r.trait, r.kind.value, r.via, r.dataset or ""),
    )
    verdict = max((r.verdict for r in reasons), key=lambda v: v.rank, default=Verdict.OK)
    return CheckResult(verdict, tuple(reasons))
