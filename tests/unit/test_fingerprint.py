"""Weight fingerprints: what shares a base is detected, what does not is not, and cheap
disguises (permuting or rotating hidden units, quantising) change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

from lineage.fingerprint import (  # noqa: E402
    EMBEDDING_SCHEME,
    FIRST_LAYER_SCHEME,
    Fingerprint,
    FingerprintError,
    fingerprint_path,
    fingerprint_tensors,
    shared_base,
)

VOCAB, HIDDEN = 1000, 64


def _embedding(seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    return {"model.embed_tokens.weight": rng.normal(0, 0.02, (VOCAB, HIDDEN))}


def _fine_tuned(weights: dict[str, object], seed: int, scale: float = 0.3) -> dict[str, object]:
    """Training moves every row a little (here by 30% of its typical size)."""
    rng = np.random.default_rng(seed)
    w = weights["model.embed_tokens.weight"]
    return {"model.embed_tokens.weight": w + rng.normal(0, 0.02 * scale, w.shape)}


def _quantised(w: object, bits: int) -> object:
    """Symmetric absmax quantisation per row, as 8- and 4-bit formats do per block."""
    levels = 2 ** (bits - 1) - 1
    scale = np.abs(w).max(axis=1, keepdims=True) / levels
    return np.round(w / scale) * scale


def test_same_base_detected_independent_not() -> None:
    base = fingerprint_tensors(_embedding(0))
    tuned = fingerprint_tensors(_fine_tuned(_embedding(0), 1))
    other = fingerprint_tensors(_embedding(2))
    yes = shared_base(base, tuned)
    assert yes.comparable and yes.shared and yes.p_value is not None and yes.p_value <= 0.01
    assert yes.statistic is not None and yes.statistic > 0.8
    no = shared_base(base, other)
    assert no.comparable and no.shared is False and no.p_value is not None and no.p_value > 0.01
    assert no.statistic is not None and abs(no.statistic) < 0.1
    assert base.scheme == EMBEDDING_SCHEME and len(base.indices) == 96
    assert all(i >= VOCAB // 2 for i in base.indices)  # rare (late-merge) tokens


def test_permuting_or_rotating_hidden_units_changes_nothing() -> None:
    w = _embedding(3)["model.embed_tokens.weight"]
    base = fingerprint_tensors({"wte.weight": w})
    perm = np.random.default_rng(4).permutation(HIDDEN)
    q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(HIDDEN, HIDDEN)))
    for disguised in (w[:, perm], w @ q):
        fp = fingerprint_tensors({"wte.weight": disguised})
        assert np.allclose(fp.gram, base.gram, atol=1e-9)
        assert shared_base(base, fp).shared


@pytest.mark.parametrize("bits", [8, 4])
def test_quantised_copies_still_match(bits: int) -> None:
    w = _embedding(6)["model.embed_tokens.weight"]
    base = fingerprint_tensors({"embed_tokens.weight": w})
    quant = fingerprint_tensors({"embed_tokens.weight": _quantised(w, bits)})
    result = shared_base(base, quant)
    assert result.shared and result.statistic is not None and result.statistic > 0.7


def test_first_layer_fingerprint_for_networks_without_a_vocabulary() -> None:
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.1, (256, 64))
    model = {"0.weight": w1, "2.weight": rng.normal(size=(13, 256))}
    base = fingerprint_tensors(model)
    assert base.scheme == FIRST_LAYER_SCHEME and base.domain == 64 and base.tensor == "0.weight"
    perm = rng.permutation(256)  # hidden units of the first layer permuted
    moved = {"0.weight": w1[perm] + rng.normal(0, 0.03, w1.shape), "2.weight": model["2.weight"]}
    assert shared_base(base, fingerprint_tensors(moved)).shared
    fresh = {"0.weight": rng.normal(0, 0.1, (256, 64))}
    assert shared_base(base, fingerprint_tensors(fresh)).shared is False


def test_not_comparable_is_never_a_guess() -> None:
    a = fingerprint_tensors(_embedding(0))
    b = fingerprint_tensors({"embed_tokens.weight": np.random.default_rng(1).normal(size=(900, 8))})
    c = fingerprint_tensors({"0.weight": np.random.default_rng(1).normal(size=(16, 64))})
    for x, y in ((a, b), (a, c)):
        result = shared_base(x, y)
        assert not result.comparable
        assert result.statistic is None and result.p_value is None and result.shared is None
        assert result.reason


def test_json_round_trip_is_compact_and_checked() -> None:
    fp = fingerprint_tensors(_embedding(0))
    doc = fp.to_json()
    assert len(doc["gram_f16"]) < 13_000  # 4,560 float16 values, under the metadata string limit
    back = Fingerprint.from_json(doc)
    assert back.indices == fp.indices and back.scheme == fp.scheme
    assert np.allclose(back.gram, fp.gram, atol=1e-3)
    assert shared_base(fp, back).shared
    for bad in (
        [],
        {**doc, "scheme": "x"},
        {**doc, "domain": -1},
        {**doc, "indices": doc["indices"][:-1]},
        {**doc, "indices": [VOCAB + 5, *doc["indices"][1:]]},
        {**doc, "gram_f16": "!!"},
        {**doc, "gram_f16": doc["gram_f16"][:-8]},
    ):
        with pytest.raises(FingerprintError):
            Fingerprint.from_json(bad)


def test_fingerprint_from_files(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    w = _embedding(0)["model.embed_tokens.weight"].astype(np.float32)
    save_file(
        {"model.embed_tokens.weight": w, "lm_head.weight": w}, str(tmp_path / "m.safetensors")
    )
    fp = fingerprint_path(tmp_path)
    assert fp.tensor == "model.embed_tokens.weight"
    assert shared_base(fp, fingerprint_tensors({"embed_tokens.weight": w})).shared
    with pytest.raises(FingerprintError):
        fingerprint_path(tmp_path / "missing.bin")


def test_unreadable_weights_are_a_fingerprint_error(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_text("not weights")
    (tmp_path / "model.gguf").write_bytes(b"GGUF broken")
    with pytest.raises(FingerprintError):
        fingerprint_path(tmp_path / "model.safetensors")
    with pytest.raises(FingerprintError):
        fingerprint_path(tmp_path / "model.gguf")
