"""Hugging Face model-tree import through the API, on SQLite and PostgreSQL.

Cards are planned with `lineage.hf` and submitted as the CLI does (`submit_plan`), signed with
the importer's key: the tree connects through `hf:` nodes, a second import adds nothing, refused
entries are reported with the reason, real weights claim their Hub node, and risk flows through
the imported tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import Engine

from lineage import hf
from registry.auth import Role
from studbook_cli.commands.ecosystem import submit_plan
from tests.support import Actor, make_actor, review_envelope

pytest.importorskip("huggingface_hub")

Client = TestClient[Any]


def submit(client: Client, actor: Actor, plan: hf.ImportPlan, mode: str) -> dict[str, Any]:
    """Submit as the CLI does: in batches, or (an older registry) one envelope at a time."""

    def post(envelope: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        r = client.post("/v1/attestations", json=envelope, headers=actor.headers)
        return r.status_code, r.json()

    def post_batch(envelopes: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        r = client.post(
            "/v1/attestations/batch", json={"envelopes": envelopes}, headers=actor.headers
        )
        return r.status_code, r.json()

    return submit_plan(post, plan, actor.signer, post_batch if mode == "batch" else None)


MODES = pytest.mark.parametrize("mode", ["batch", "single"])


def card(folder: Path, meta: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(f"---\n{meta}\n---\n# card\n", encoding="utf-8")


def build_tree(root: Path) -> Path:
    cards = root / "cards"
    card(cards / "acme--owl-7b", "datasets: [acme/web-crawl]")
    card(
        cards / "acme--owl-7b-instruct",
        "base_model: acme/owl-7b\nbase_model_relation: finetune\ndatasets:\n- acme/chat",
    )
    card(cards / "acme--owl-7b-instruct-lora", "base_model: acme/owl-7b-instruct")
    (cards / "acme--owl-7b-instruct-lora" / "adapter_config.json").write_text("{}")
    card(cards / "acme--owl-merge", "base_model:\n- acme/owl-7b-instruct\n- other/llama-7b")
    card(cards / "acme--owl-7b-instruct-gguf", "base_model: acme/owl-7b-instruct\ntags: [gguf]")
    card(cards / "acme--broken", "base_model: [oops\n")
    card(cards / "acme--weird", "base_model: acme/owl-7b\nbase_model_relation: distillation")
    return cards


def lineage_edges(client: Client, actor: Actor, ref: str) -> set[tuple[str, str, str]]:
    data = client.get(
        f"/v1/artifacts/{ref}/lineage?direction=up&depth=10", headers=actor.headers
    ).json()
    refs = {n["artifact"]["digest"]: n["artifact"]["ref"] for n in data["nodes"]}
    return {(refs[e["child"]], e["relation"], refs[e["parent"]]) for e in data["edges"]}


@MODES
def test_model_tree_imports_as_one_batch(
    client: Client, registrar: Actor, tmp_path: Path, mode: str
) -> None:
    cards = build_tree(tmp_path)
    # The lora folder holds adapter_config.json, so it has "weights" of its own to claim.
    summary = submit(client, registrar, hf.plan_import([cards]), mode)
    assert summary["cards"] == 5
    assert summary["batches"] == (1 if mode == "batch" else 0)  # one transaction for the batch
    reasons = {
        s.get("path", s.get("ref", "")).rsplit("/", 2)[-2]: s["reason"] for s in summary["skipped"]
    }
    assert "malformed YAML" in reasons["acme--broken"]
    assert "unknown base_model_relation 'distillation'" in reasons["acme--weird"]
    added = {a["ref"] for a in summary["added"]}
    assert {
        "hf:acme/owl-7b@hub",
        "hf:acme/owl-7b-instruct@hub",
        "hf:acme/owl-7b-instruct-lora@hub",
        "hf:acme/owl-merge@hub",
        "hf:acme/owl-7b-instruct-gguf@hub",
        "hf:other/llama-7b@hub",
        "hf:datasets/acme/chat@hub",
        "hf:datasets/acme/web-crawl@hub",
        "hf:acme/owl-7b-instruct-lora@local",
    } == added
    edges = lineage_edges(client, registrar, "hf:acme/owl-merge@hub")
    assert ("hf:acme/owl-merge@hub", "merged_from", "hf:other/llama-7b@hub") in edges
    assert ("hf:acme/owl-merge@hub", "merged_from", "hf:acme/owl-7b-instruct@hub") in edges
    assert ("hf:acme/owl-7b-instruct@hub", "fine_tuned_from", "hf:acme/owl-7b@hub") in edges
    assert ("hf:acme/owl-7b-instruct@hub", "trained_on", "hf:datasets/acme/chat@hub") in edges
    assert ("hf:acme/owl-7b@hub", "trained_on", "hf:datasets/acme/web-crawl@hub") in edges
    lora = lineage_edges(client, registrar, "hf:acme/owl-7b-instruct-lora@local")
    assert (
        "hf:acme/owl-7b-instruct-lora@local",
        "initialized_from",
        "hf:acme/owl-7b-instruct-lora@hub",
    ) in lora
    assert ("hf:acme/owl-7b-instruct-lora@hub", "adapter_of", "hf:acme/owl-7b-instruct@hub") in lora
    gguf = lineage_edges(client, registrar, "hf:acme/owl-7b-instruct-gguf@hub")
    assert (
        "hf:acme/owl-7b-instruct-gguf@hub",
        "quantized_from",
        "hf:acme/owl-7b-instruct@hub",
    ) in gguf
    art = client.get("/v1/artifacts/hf:acme/owl-7b@hub", headers=registrar.headers).json()
    assert art["opaque"] and art["metadata"]["hub_id"] == "acme/owl-7b"
    assert art["digest"] == hf.hf_digest("acme/owl-7b")

    # Importing again adds nothing.
    again = submit(client, registrar, hf.plan_import([cards]), mode)
    assert again["added"] == [] and len(again["existing"]) == len(summary["added"])


@MODES
def test_risk_flows_through_the_imported_tree_and_claims(
    client: Client, registrar: Actor, reviewer: Actor, tmp_path: Path, mode: str
) -> None:
    cards = build_tree(tmp_path)
    submit(client, registrar, hf.plan_import([cards]), mode)
    env = review_envelope(reviewer.signer, hf.hf_digest("acme/owl-7b-instruct"), "owl")
    assert client.post("/v1/attestations", json=env, headers=reviewer.headers).status_code == 201
    for ref in (
        "hf:acme/owl-merge@hub",
        "hf:acme/owl-7b-instruct-gguf@hub",
        "hf:acme/owl-7b-instruct-lora@local",  # the real weights, through their claim
    ):
        risk = client.get(f"/v1/artifacts/{ref}/risk", headers=registrar.headers).json()
        assert risk["status"] == "at_risk", (ref, risk)
    base = client.get("/v1/artifacts/hf:acme/owl-7b@hub/risk", headers=registrar.headers).json()
    assert base["status"] not in {"at_risk", "flagged"} and base["at_risk"] == []


@MODES
def test_refused_entries_are_reported_and_the_batch_goes_on(
    client: Client, engine: Engine, registrar: Actor, tmp_path: Path, mode: str
) -> None:
    other = make_actor(client, engine, "other-pipeline", Role.REGISTRAR)
    cards = tmp_path / "cards"
    card(cards / "acme--child", "base_model: acme/base")
    card(cards / "acme--grandchild", "base_model: acme/child")
    card(cards / "acme--great", "base_model: acme/grandchild\nbase_model_relation: quantized")
    # Another pipeline registered acme/child's Hub node first, as a base with no parents.
    first = submit(client, other, hf.plan_import([cards / "acme--grandchild"]), mode)
    assert first["skipped"] == []
    summary = submit(client, registrar, hf.plan_import([cards]), mode)
    # Adding parents to it would amend another principal's artifact: refused, with the reason,
    # and the batch goes on.
    (refused,) = [s for s in summary["skipped"] if s.get("ref") == "hf:acme/child@hub"]
    assert refused["reason"].startswith("refused (403)")
    added = {a["ref"] for a in summary["added"]}
    assert {"hf:acme/base@hub", "hf:acme/great@hub"} <= added  # children still imported
    existing = {e["ref"] for e in summary["existing"]}
    assert "hf:acme/grandchild@hub" in existing
