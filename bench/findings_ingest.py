"""What the weights check costs at ingest: registration latency with and without a fingerprint.

An in-process app on a throwaway SQLite file. It registers `--roots` root models with K = 96
embedding fingerprints (vocabulary 1,000, random N(0, 0.02) weights), then measures, as medians:

* a registration without a fingerprint (the baseline);
* a fingerprinted model independent of every root: all candidates are screened (one vectorised
  statistic), none needs the permutation test;
* a fingerprinted copy of a recent root (weights + 30% noise): one permutation test (999
  relabellings), then a finding signed with the log key, stored and appended to the log.

    python bench/findings_ingest.py [--roots 200] [--samples 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from litestar.testing import TestClient
from sqlmodel import Session

from lineage import dsse
from lineage.digests import opaque_digest
from lineage.fingerprint import fingerprint_tensors
from lineage.statements import registration_statement, sign_statement
from lineage.types import ArtifactKind, ArtifactRef, Registration
from registry.app import create_app
from registry.auth import Role
from registry.db import make_engine, upgrade
from registry.principals.service import create_principal
from registry.settings import Settings

VOCAB, HIDDEN = 1000, 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roots", type=int, default=200)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        app = create_app(Settings(data_dir=Path(tmp) / "data", database_url=url), engine=engine)
        with TestClient(app) as client, Session(engine) as session:
            _, token = create_principal(session, "bench", Role.REGISTRAR)
            signer = dsse.Signer(dsse.generate_private_key())
            headers = {"Authorization": f"Bearer {token}"}
            body = {
                "public_key": signer.public_key_text,
                "proof": dsse.key_possession_proof(signer, "bench").to_json(),
            }
            assert client.post("/v1/keys", json=body, headers=headers).status_code == 201

            def register(label: str, w: Any | None) -> float:
                meta = {} if w is None else {"fingerprint": _fp(w)}
                ref = ArtifactRef(ArtifactKind.MODEL, label, "1", opaque_digest("bench:" + label))
                env = sign_statement(registration_statement(Registration(ref, (), meta)), signer)
                t = time.perf_counter()
                r = client.post("/v1/attestations", json=env.to_json(), headers=headers)
                elapsed = time.perf_counter() - t
                assert r.status_code == 201, r.text
                return elapsed

            roots = []
            for i in range(args.roots):
                roots.append(rng.normal(0, 0.02, (VOCAB, HIDDEN)))
                register(f"bench/root{i}", roots[-1])
            plain = [register(f"bench/plain{i}", None) for i in range(args.samples)]
            indep = [
                register(f"bench/indep{i}", rng.normal(0, 0.02, (VOCAB, HIDDEN)))
                for i in range(args.samples)
            ]
            copies = [
                register(f"bench/copy{i}", roots[-1 - i] + rng.normal(0, 0.006, (VOCAB, HIDDEN)))
                for i in range(args.samples)
            ]
            found = client.get("/v1/findings", headers=headers).json()["count"]
        engine.dispose()
    print(f"roots of the same vocabulary: {args.roots}; samples each: {args.samples}")
    print(f"registration, no fingerprint:                 {_ms(plain)}")
    print(f"fingerprinted, independent (screened only):   {_ms(indep)}")
    print(f"fingerprinted copy (permutation test+finding): {_ms(copies)}")
    print(f"findings raised: {found} (expected {args.samples})")


def _fp(w: Any) -> dict[str, Any]:
    return fingerprint_tensors({"model.embed_tokens.weight": w}).to_json()


def _ms(values: list[float]) -> str:
    return f"median {1000 * statistics.median(values):.1f} ms"


if __name__ == "__main__":
    main()
