"""Relation rules: families and the kinds each relation may join."""

from __future__ import annotations

import pytest

from lineage.errors import DigestError, RelationError
from lineage.types import (
    DATA_RELATIONS,
    WEIGHTS_RELATIONS,
    ArtifactKind,
    ArtifactRef,
    Relation,
    RelationFamily,
    check_digest,
)

M, D = ArtifactKind.MODEL, ArtifactKind.DATASET

EXPECTED = {
    "fine_tuned_from": ("weights", M, M),
    "adapter_of": ("weights", M, M),
    "merged_from": ("weights", M, M),
    "quantized_from": ("weights", M, M),
    "prompted_from": ("weights", M, M),
    "initialized_from": ("weights", M, M),
    "trained_on": ("data", M, D),
    "generated_by": ("data", D, M),
    "derived_from": ("data", D, D),
}


def test_the_nine_relations_of_the_design() -> None:
    assert {r.value for r in Relation} == set(EXPECTED)
    for r in Relation:
        family, child, parent = EXPECTED[r.value]
        assert r.family is RelationFamily(family)
        assert (r.child_kind, r.parent_kind) == (child, parent)
    assert set(Relation) == WEIGHTS_RELATIONS | DATA_RELATIONS
    assert not WEIGHTS_RELATIONS & DATA_RELATIONS


@pytest.mark.parametrize("relation", list(Relation))
def test_check_kinds_accepts_exactly_one_pairing(relation: Relation) -> None:
    for child in ArtifactKind:
        for parent in ArtifactKind:
            if (child, parent) == (relation.child_kind, relation.parent_kind):
                relation.check_kinds(child, parent)
            else:
                with pytest.raises(RelationError) as info:
                    relation.check_kinds(child, parent)
                assert relation.value in info.value.message


def test_digest_checks() -> None:
    assert check_digest("sha256:" + "a" * 64) == "a" * 64
    for bad in ("A" * 64, "a" * 63, "sha512:" + "a" * 64, ""):
        with pytest.raises(DigestError):
            check_digest(bad)
    with pytest.raises(DigestError):
        ArtifactRef(M, "n", "1", "xyz")
