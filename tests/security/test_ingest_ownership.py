"""Ownership and amendments: who may add parents to an existing artifact, and how it is said.

The principal that first registers an artifact owns it. Another registrar re-registering it with
an extra parent gets 403 naming the owner and writes nothing; the owner (or an admin) gets an
answer that says `amended` and lists the edges added; every edge shows the attestation, the
principal and the time that asserted it. Both databases.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from registry.auth import Role
from tests.security._ingest import Client, assert_refused, post
from tests.support import (
    Actor,
    digest_of,
    key_registration,
    make_actor,
    register,
    registration_envelope,
    row_counts,
)


def _lineage(client: Client, actor: Actor, ref: str, direction: str = "up") -> dict[str, Any]:
    r = client.get(
        f"/v1/artifacts/{ref}/lineage", params={"direction": direction}, headers=actor.headers
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _assert_replays(engine: Engine) -> None:
    from registry.log.audit import audit

    report = audit(engine)
    assert report.ok, [str(f) for f in report.findings]


def _seed(client: Client, owner: Actor) -> None:
    register(client, owner, "model", "seed/base@1")
    register(client, owner, "dataset", "seed/data@1")
    register(client, owner, "model", "seed/child@1", [("fine_tuned_from", "seed/base@1")])


def _amend_env(actor: Actor) -> dict[str, Any]:
    """seed/child@1 re-registered with its parent and an extra trained_on edge."""
    return registration_envelope(
        actor.signer,
        "model",
        "seed/child@1",
        [
            ("fine_tuned_from", digest_of("seed/base@1")),
            ("trained_on", digest_of("seed/data@1")),
        ],
    )


def test_another_registrar_cannot_add_parents_to_an_artifact_it_does_not_own(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    _seed(client, registrar)
    mallory = make_actor(client, engine, "mallory", Role.REGISTRAR)
    body = assert_refused(
        client, engine, mallory, _amend_env(mallory), status=403, field="predicate.parents"
    )
    assert body["owner"] == registrar.name and registrar.name in body["detail"]
    edges = _lineage(client, registrar, "seed/child@1")["edges"]
    assert [(e["relation"], e["asserted_by"]) for e in edges] == [
        ("fine_tuned_from", registrar.name)
    ]


def test_a_non_owner_cannot_close_a_cycle_either_it_is_refused_as_not_the_owner(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    _seed(client, registrar)
    mallory = make_actor(client, engine, "mallory", Role.REGISTRAR)
    env = registration_envelope(
        mallory.signer,
        "model",
        "seed/base@1",
        [("fine_tuned_from", digest_of("seed/child@1"))],
    )
    assert_refused(client, engine, mallory, env, status=403, field="predicate.parents")


def test_the_owner_amends_and_is_told_so(client: Client, engine: Engine, registrar: Actor) -> None:
    _seed(client, registrar)
    before = row_counts(engine)
    r = post(client, registrar, _amend_env(registrar))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True and body["amended"] is True
    assert body["edges_added"] == 1
    assert body["added_edges"] == [
        {"relation": "trained_on", "parent": digest_of("seed/data@1"), "parent_ref": "seed/data@1"}
    ]
    assert body["artifact"]["owner"] == registrar.name
    after = row_counts(engine)
    assert after["edges"] == before["edges"] + 1
    assert after["artifacts"] == before["artifacts"]
    edges = {e["relation"]: e for e in _lineage(client, registrar, "seed/child@1")["edges"]}
    first, amendment = edges["fine_tuned_from"], edges["trained_on"]
    assert amendment["attestation_id"] == body["attestation_id"] != first["attestation_id"]
    assert amendment["asserted_by"] == registrar.name
    assert amendment["asserted_at"] >= first["asserted_at"]
    _assert_replays(engine)


def test_an_admin_may_amend_and_the_edge_names_the_admin(
    client: Client, engine: Engine, admin_token: str, registrar: Actor
) -> None:
    from lineage import dsse

    _seed(client, registrar)
    admin_signer = dsse.Signer(dsse.generate_private_key())
    headers = {"Authorization": f"Bearer {admin_token}"}
    assert (
        client.post("/v1/keys", json=key_registration(admin_signer, "admin"), headers=headers)
    ).status_code == 201
    admin = Actor("admin", admin_token, admin_signer)
    r = post(client, admin, _amend_env(admin))
    assert r.status_code == 201, r.text
    assert r.json()["amended"] is True
    assert r.json()["artifact"]["owner"] == registrar.name  # amending does not transfer ownership
    edges = {e["relation"]: e for e in _lineage(client, registrar, "seed/child@1")["edges"]}
    assert edges["trained_on"]["asserted_by"] == "admin"
    assert edges["fine_tuned_from"]["asserted_by"] == registrar.name
    _assert_replays(engine)  # the amendment is accepted again when the record is replayed


def test_a_re_registration_that_adds_nothing_is_not_an_amendment(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    _seed(client, registrar)
    other = make_actor(client, engine, "other", Role.REGISTRAR)
    before = row_counts(engine)
    # The same facts in other words (metadata differs), so this is a new statement, not a
    # re-submission of the owner's.
    env = registration_envelope(
        other.signer,
        "model",
        "seed/child@1",
        [("fine_tuned_from", digest_of("seed/base@1"))],
        metadata={"seen_by": "other"},
    )
    r = post(client, other, env)
    assert r.status_code == 201, r.text
    assert (r.json()["amended"], r.json()["edges_added"], r.json()["added_edges"]) == (
        False,
        0,
        [],
    )
    assert r.json()["artifact"]["owner"] == registrar.name
    after = row_counts(engine)
    assert (after["edges"], after["artifacts"]) == (before["edges"], before["artifacts"])


def test_owner_is_shown_on_every_artifact_answer(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    _seed(client, registrar)
    h = registrar.headers
    assert client.get("/v1/artifacts/seed/child@1", headers=h).json()["owner"] == registrar.name
    listing = client.get("/v1/artifacts", headers=h).json()["data"]
    assert {a["owner"] for a in listing} == {registrar.name}
    nodes = _lineage(client, registrar, "seed/base@1", "down")["nodes"]
    assert {n["artifact"]["owner"] for n in nodes} == {registrar.name}


def test_a_new_artifact_with_parents_owned_by_others_is_not_an_amendment(
    client: Client, engine: Engine, registrar: Actor
) -> None:
    _seed(client, registrar)
    other = make_actor(client, engine, "other", Role.REGISTRAR)
    r = post(
        client,
        other,
        registration_envelope(
            other.signer, "model", "other/ft@1", [("fine_tuned_from", digest_of("seed/child@1"))]
        ),
    )
    assert r.status_code == 201, r.text
    assert r.json()["amended"] is False and r.json()["edges_added"] == 1
    assert r.json()["artifact"]["owner"] == "other"
