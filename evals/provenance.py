"""The lineage an eval run declares about its own artifacts.

Every run records the models and datasets it made (base, teacher, generated and filtered
datasets, students) with real content digests of files in the run directory, plus the relations
between them in the registry's vocabulary. A registry job can then sign and ingest the run's
graph as it stands, so the eval's evidence sits in the same graph as the risk rule it backs.

Artifacts are keyed by a role unique within the run (``teacher/seed0``); relations point at
roles. Things without bytes in the run directory (a base model loaded from elsewhere) may still
carry a content digest of the file they were loaded from; a thing with no bytes at all gets an
opaque digest of an identifier, as the registry does for API-only models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineage.digests import artifact_digest, opaque_digest
from lineage.types import ArtifactKind, Relation

from .errors import EvalError


@dataclass
class LineageRecord:
    """Artifacts and relations of one run, validated against the registry's relation rules."""

    run_dir: Path
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    relations: list[dict[str, str]] = field(default_factory=list)

    def add(
        self,
        role: str,
        kind: ArtifactKind,
        name: str,
        path: str | os.PathLike[str] | None = None,
        *,
        opaque: str | None = None,
        **metadata: Any,
    ) -> str:
        """Record an artifact and return its digest.

        Args:
            role: unique key within the run, e.g. ``student_same/seed0``.
            kind: model or dataset.
            name: human name (``studbook-eval/owl-teacher``).
            path: file or directory holding its content; inside the run dir it is stored
                relative, outside it absolute.
            opaque: identifier to digest when there is no content to hash.
            **metadata: extra JSON-ready facts (size, share kept, ...).

        Raises:
            EvalError: a duplicate role, or neither/both of ``path`` and ``opaque``.
        """
        if role in self.artifacts:
            raise EvalError(f"lineage role {role!r} recorded twice")
        if (path is None) == (opaque is None):
            raise EvalError(f"lineage role {role!r} needs exactly one of path or opaque")
        entry: dict[str, Any] = {"role": role, "kind": kind.value, "name": name}
        if path is not None:
            p = Path(path)
            entry["digest"] = artifact_digest(p)
            try:
                entry["path"] = p.resolve().relative_to(self.run_dir.resolve()).as_posix()
            except ValueError:
                entry["path"] = str(p.resolve())
            entry["opaque"] = False
        else:
            assert opaque is not None
            entry["digest"] = opaque_digest(opaque)
            entry["path"] = "opaque"
            entry["identifier"] = opaque
            entry["opaque"] = True
        if metadata:
            entry["metadata"] = metadata
        self.artifacts[role] = entry
        return str(entry["digest"])

    def relate(self, child: str, relation: Relation, parent: str) -> None:
        """Record ``child --relation--> parent`` after checking both ends and their kinds.

        Raises:
            EvalError: an unknown role, or kinds the relation cannot join.
        """
        for role in (child, parent):
            if role not in self.artifacts:
                raise EvalError(f"lineage relation names unknown role {role!r}")
        relation.check_kinds(
            ArtifactKind(self.artifacts[child]["kind"]),
            ArtifactKind(self.artifacts[parent]["kind"]),
        )
        self.relations.append({"child": child, "relation": relation.value, "parent": parent})

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"artifacts": [...], "relations": [...]}`` for ``result.json``."""
        return {"artifacts": list(self.artifacts.values()), "relations": list(self.relations)}
