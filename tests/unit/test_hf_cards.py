"""Hugging Face model cards -> registrations, read with huggingface_hub's own parser.

Cards of every relation shape, lists, missing relations (inferred as the Hub does), datasets,
malformed YAML and unknown relations (skipped with a reason), a local cache layout, a folder of
cards, real weights claiming their Hub node; all built in temporary folders, no network.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage import hf
from lineage.digests import artifact_digest
from lineage.types import ArtifactKind, Registration, Relation

pytest.importorskip("huggingface_hub")


def card(folder: Path, meta: str, body: str = "# Model\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "README.md"
    p.write_text(f"---\n{meta}\n---\n{body}", encoding="utf-8")
    return p


def parents_of(plan: hf.ImportPlan, hub_id: str) -> set[tuple[Relation, str]]:
    (reg,) = [
        r
        for r in plan.registrations
        if r.artifact.name == f"hf:{hub_id}" and r.artifact.version == hf.HUB_VERSION
    ]
    return {(p.relation, p.digest) for p in reg.parents}


def assert_parents_first(regs: list[Registration]) -> None:
    seen: set[str] = set()
    for r in regs:
        for p in r.parents:
            assert p.digest in seen, f"{r.artifact.label} before its parent"
        seen.add(r.artifact.digest)
    assert len(seen) == len(regs)  # one registration per artifact


@pytest.mark.parametrize(
    ("relation", "expected"),
    [
        ("finetune", Relation.FINE_TUNED_FROM),
        ("adapter", Relation.ADAPTER_OF),
        ("merge", Relation.MERGED_FROM),
        ("quantized", Relation.QUANTIZED_FROM),
        ("Quantized", Relation.QUANTIZED_FROM),
    ],
)
def test_explicit_relations(tmp_path: Path, relation: str, expected: Relation) -> None:
    card(tmp_path / "acme--child", f"base_model: org/base\nbase_model_relation: {relation}")
    plan = hf.plan_import([tmp_path / "acme--child"])
    assert plan.skipped == []
    assert parents_of(plan, "acme/child") == {(expected, hf.hf_digest("org/base"))}
    assert_parents_first(plan.registrations)
    (c,) = plan.cards
    assert c.hub_id == "acme/child" and not c.inferred


def test_list_with_explicit_relation_and_datasets(tmp_path: Path) -> None:
    card(
        tmp_path / "acme--merged",
        "base_model:\n- org/a\n- org/b\nbase_model_relation: merge\nlicense: apache-2.0\n"
        "datasets:\n- HuggingFaceFW/fineweb\n- imdb",
    )
    plan = hf.plan_import([tmp_path / "acme--merged"])
    assert parents_of(plan, "acme/merged") == {
        (Relation.MERGED_FROM, hf.hf_digest("org/a")),
        (Relation.MERGED_FROM, hf.hf_digest("org/b")),
        (Relation.TRAINED_ON, hf.hf_dataset_digest("HuggingFaceFW/fineweb")),
        (Relation.TRAINED_ON, hf.hf_dataset_digest("imdb")),
    }
    (merged,) = [r for r in plan.registrations if r.artifact.name == "hf:acme/merged"]
    assert merged.metadata["license"] == "apache-2.0"
    kinds = {r.artifact.name: r.artifact.kind for r in plan.registrations}
    assert kinds["hf:datasets/imdb"] is ArtifactKind.DATASET
    assert kinds["hf:org/a"] is ArtifactKind.MODEL
    bases = [r for r in plan.registrations if r.artifact.name == "hf:org/a"]
    assert bases[0].artifact.opaque and bases[0].artifact.version == hf.HUB_VERSION
    assert_parents_first(plan.registrations)


@pytest.mark.parametrize(
    ("files", "meta", "expected"),
    [
        ({}, "base_model:\n- org/a\n- org/b", Relation.MERGED_FROM),
        ({"adapter_config.json": "{}"}, "base_model: org/a", Relation.ADAPTER_OF),
        ({"model-Q4_K_M.gguf": "x"}, "base_model: org/a", Relation.QUANTIZED_FROM),
        (
            {"config.json": '{"quantization_config": {"quant_method": "awq"}}'},
            "base_model: org/a",
            Relation.QUANTIZED_FROM,
        ),
        ({"quantize_config.json": "{}"}, "base_model: org/a", Relation.QUANTIZED_FROM),
        ({}, "base_model: org/a\ntags:\n- gptq", Relation.QUANTIZED_FROM),
        ({"config.json": '{"hidden_size": 8}'}, "base_model: org/a", Relation.FINE_TUNED_FROM),
        ({}, "base_model: [org/a]", Relation.FINE_TUNED_FROM),
    ],
)
def test_missing_relation_is_inferred_as_the_hub_does(
    tmp_path: Path, files: dict[str, str], meta: str, expected: Relation
) -> None:
    folder = tmp_path / "acme--child"
    card(folder, meta)
    for name, text in files.items():
        (folder / name).write_text(text)
    plan = hf.plan_import([folder], weights_digest=lambda _: "0" * 64)
    assert {rel for rel, _ in parents_of(plan, "acme/child")} == {expected}
    assert plan.cards[0].inferred


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        ("base_model: [org/a\n", "malformed YAML"),
        ("base_model: org/a\nbase_model_relation: distill", "unknown base_model_relation"),
        ("base_model: 'not a valid id!'", "not a Hugging Face repository id"),
        ("license: mit", "neither base_model nor datasets"),
        ("base_model_relation: adapter", "base_model is missing"),
        ("base_model: acme/child", "names itself"),
        ("base_model: {a: 1}", "string or a list"),
    ],
)
def test_bad_cards_are_skipped_with_the_reason(tmp_path: Path, meta: str, reason: str) -> None:
    card(tmp_path / "cards" / "acme--child", meta)
    card(tmp_path / "cards" / "acme--good", "base_model: org/a")
    plan = hf.plan_import([tmp_path / "cards"])
    assert [s.reason for s in plan.skipped if reason in s.reason], plan.skipped
    assert [c.hub_id for c in plan.cards] == ["acme/good"]  # the rest of the batch goes on


def test_non_utf8_and_huge_cards_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "acme--bin.md").write_bytes(b"---\nbase_model: \xff\n---\n")
    (tmp_path / "cards" / "acme--big.md").write_text("x" * (hf.MAX_CARD_BYTES + 1))
    plan = hf.plan_import([tmp_path / "cards"])
    assert sorted(s.reason for s in plan.skipped) == [
        "card is larger than 1048576 bytes",
        "card is not UTF-8",
    ]


def test_local_cache_layout_names_org_name_and_revision(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    repo = cache / "models--acme--owl-7b-instruct"
    rev = "0123456789abcdef0123456789abcdef01234567"
    old = "fedcba9876543210fedcba9876543210fedcba98"
    snap = repo / "snapshots" / rev
    card(snap, "base_model: acme/owl-7b\nbase_model_relation: finetune\ndatasets: acme/chat")
    card(repo / "snapshots" / old, "base_model: acme/owl-6b")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    blobs = repo / "blobs"
    blobs.mkdir()
    (blobs / "abc").write_bytes(b"weights")
    (snap / "model.safetensors").symlink_to(blobs / "abc")  # the cache links into blobs
    other = cache / "models--acme--owl-7b"
    card(other / "snapshots" / old, "datasets: [acme/pretrain]")
    (cache / "datasets--acme--chat").mkdir()

    for target in (cache, repo):
        plan = hf.plan_import([target])
        assert plan.skipped == []
        child = [c for c in plan.cards if c.hub_id == "acme/owl-7b-instruct"]
        assert child[0].revision == rev  # refs/main wins over the older snapshot
        assert child[0].weights_dir is None  # links into blobs are not hashed
        assert parents_of(plan, "acme/owl-7b-instruct") == {
            (Relation.FINE_TUNED_FROM, hf.hf_digest("acme/owl-7b")),
            (Relation.TRAINED_ON, hf.hf_dataset_digest("acme/chat")),
        }
        (reg,) = [r for r in plan.registrations if r.artifact.name == "hf:acme/owl-7b-instruct"]
        assert reg.metadata["revision"] == rev
        assert_parents_first(plan.registrations)
    # One snapshot named directly: the repository and revision come from the cache layout.
    plan = hf.plan_import([repo / "snapshots" / old])
    assert [(c.hub_id, c.revision) for c in plan.cards] == [("acme/owl-7b-instruct", old)]
    plan = hf.plan_import([cache])
    assert parents_of(plan, "acme/owl-7b") == {
        (Relation.TRAINED_ON, hf.hf_dataset_digest("acme/pretrain"))
    }


def test_folder_of_cards_and_org_folders(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "acme--a.md").write_text("---\nbase_model: org/base\n---\n")
    card(cards / "acme" / "b", "base_model: acme/a\nbase_model_relation: quantized")
    (cards / "notes.txt").write_text("ignored")
    plan = hf.plan_import([cards])
    assert sorted(c.hub_id for c in plan.cards) == ["acme/a", "acme/b"]
    assert parents_of(plan, "acme/b") == {(Relation.QUANTIZED_FROM, hf.hf_digest("acme/a"))}
    names = [r.artifact.name for r in plan.registrations]
    assert names.index("hf:org/base") < names.index("hf:acme/a") < names.index("hf:acme/b")


def test_real_weights_claim_their_hub_node(tmp_path: Path) -> None:
    folder = tmp_path / "acme--owl-7b-instruct"
    card(folder, "base_model: acme/owl-7b")
    (folder / "model.safetensors").write_bytes(b"\x00" * 100)
    plan = hf.plan_import([folder])
    real = [r for r in plan.registrations if not r.artifact.opaque and r.artifact.kind == "model"]
    (reg,) = real
    assert reg.artifact.digest == artifact_digest(folder)
    assert reg.artifact.name == "hf:acme/owl-7b-instruct" and reg.artifact.version == "local"
    assert reg.parents == (hf.claim_link("acme/owl-7b-instruct"),)
    assert reg.parents[0].relation is Relation.INITIALIZED_FROM
    assert_parents_first(plan.registrations)


def test_cycles_and_duplicates_are_skipped(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "acme--x.md").write_text("---\nbase_model: acme/y\n---\n")
    (cards / "acme--y.md").write_text("---\nbase_model: acme/x\n---\n")
    (cards / "acme--z.md").write_text("---\nbase_model: org/base\n---\n")
    plan = hf.plan_import([cards, cards / "acme--z.md"])
    assert any("cycle" in s.reason for s in plan.skipped)
    assert any("second card" in s.reason for s in plan.skipped)
    names = {r.artifact.name for r in plan.registrations}
    assert "hf:acme/z" in names and "hf:acme/x" not in names and "hf:acme/y" not in names
    assert_parents_first(plan.registrations)


def test_missing_paths_and_claim_of_bad_ids(tmp_path: Path) -> None:
    plan = hf.plan_import([tmp_path / "nope"])
    assert plan.skipped[0].reason == "no such file or directory"
    with pytest.raises(hf.HfCardError):
        hf.claim_link("../etc")
    assert hf.hf_digest("org/a") != hf.hf_dataset_digest("org/a")
