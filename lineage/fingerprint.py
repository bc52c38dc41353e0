"""Weight fingerprints and a shared-base test with a p-value.

Studbook's risk rule rests on whether two models share a base, which registrants declare. The
weights carry evidence of it: what a model's input layer looks like right after initialisation
survives fine-tuning, LoRA, merges and quantisation, because training moves it little (rarely
used tokens of a language model hardly move at all), while two independent initialisations are
unrelated random draws.

**The fingerprint** is the cosine Gram matrix of the input layer's rows for a fixed, public set
of inputs: for a language model, the embedding rows of ``K`` token ids drawn from the upper half
of the vocabulary (byte-pair merges learned late, so rare tokens whose embeddings stay close to
their initialisation); for a network without a vocabulary, the columns of its first weight
matrix (one per input feature). A Gram matrix ``E Eᵀ`` is unchanged by any orthogonal transform
of the hidden space (``E -> E Q``), so permuting or rotating hidden units, the cheap ways to
disguise a copy, leave it exactly as it was; normalising rows makes it blind to rescaling. The
upper triangle is stored as float16: 4,560 numbers (9 KiB) for ``K = 96``, small enough to sign
and keep with a registration.

**The test** is the Pearson correlation ``r`` between two fingerprints' upper triangles, and its
p-value under the null that the two input layers are unrelated (independently initialised): a
permutation test that relabels one model's inputs (rows and columns together) uniformly at random,
``p = (1 + #{r_perm >= r}) / (1 + n)``. Fingerprints of different schemes, vocabulary sizes or
input widths are "not comparable": the test then gives no statistic rather than a guess.

**The decision** needs both a small p-value and a large effect (``r >= 0.5``). Independently
initialised networks trained on the same inputs pick up the same input structure (neighbouring
pixels, related words), which the permutation null does not model: on the digits networks such
pairs reach ``r`` of 0.01-0.08 with permutation p-values down to 0.001, while pairs that share an
initialisation stay near 0.98 after training. The p-value is reported as computed; `shared` is the
decision.

What the test cannot see: a model whose input layer was re-initialised (or trained from scratch on
a teacher's outputs) shares nothing here, and two independently trained models whose inputs carry
strong shared structure (common words, neighbouring pixels) can correlate through that structure
alone; the permutation null does not model it, which is why rare tokens are used and why the
false-positive rate is measured (`bench/fingerprints.py`) rather than assumed.

numpy (and safetensors or gguf for reading weights) are imported inside the functions that need
them: `lineage` stays importable without them.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LineageError

__all__ = [
    "EMBEDDING_SCHEME",
    "FIRST_LAYER_SCHEME",
    "Comparison",
    "Fingerprint",
    "FingerprintError",
    "fingerprint_path",
    "fingerprint_tensors",
    "shared_base",
]

EMBEDDING_SCHEME = "studbook.dev/fingerprint/embedding-gram/v1"
FIRST_LAYER_SCHEME = "studbook.dev/fingerprint/first-layer-gram/v1"
DEFAULT_TOKENS = 96
MAX_FEATURES = 256  # first-layer inputs kept (evenly spaced) for wide inputs such as MNIST's 784
PERMUTATIONS = 999
ALPHA = 0.01
MIN_EFFECT = 0.5
_TOKEN_SEED = 20251129
_EMBEDDING_NAMES = re.compile(
    r"(^|\.)(embed_tokens|wte|word_embeddings|tok_embeddings|token_embd|embeddings)\.weight$"
)


class FingerprintError(LineageError):
    """Weights that cannot be fingerprinted, or a malformed fingerprint document."""


@dataclass(frozen=True)
class Fingerprint:
    """A compact, signable summary of a model's input layer.

    Attributes:
        scheme: which input layer and normalisation (`EMBEDDING_SCHEME`, `FIRST_LAYER_SCHEME`).
        domain: the input space: vocabulary size for embeddings, input width otherwise. Two
            fingerprints are comparable only with the same scheme and domain.
        indices: the inputs whose rows the Gram is over (token ids, or feature indices).
        gram: upper triangle (row-major, diagonal excluded) of the cosine Gram matrix.
        tensor: the weight the fingerprint was computed from, for people reading it.
    """

    scheme: str
    domain: int
    indices: tuple[int, ...]
    gram: tuple[float, ...]
    tensor: str

    def to_json(self) -> dict[str, Any]:
        """JSON form: the Gram as base64 of little-endian float16 (9 KiB for K = 96)."""
        import numpy as np

        raw = np.asarray(self.gram, dtype="<f2").tobytes()
        return {
            "scheme": self.scheme,
            "domain": self.domain,
            "indices": list(self.indices),
            "gram_f16": base64.b64encode(raw).decode("ascii"),
            "tensor": self.tensor,
            "sha256": hashlib.sha256(raw).hexdigest(),
        }

    @classmethod
    def from_json(cls, data: object) -> Fingerprint:
        """Parse and check the JSON form.

        Raises:
            FingerprintError: a missing or ill-typed field, or a Gram of the wrong length.
        """
        import numpy as np

        if not isinstance(data, Mapping):
            raise FingerprintError("a fingerprint must be a JSON object")
        scheme, domain = data.get("scheme"), data.get("domain")
        indices, gram, tensor = data.get("indices"), data.get("gram_f16"), data.get("tensor", "")
        if scheme not in (EMBEDDING_SCHEME, FIRST_LAYER_SCHEME):
            raise FingerprintError(f"unknown fingerprint scheme {scheme!r}")
        if not isinstance(domain, int) or isinstance(domain, bool) or not 0 < domain < 2**31:
            raise FingerprintError("fingerprint domain must be a positive integer")
        if (
            not isinstance(indices, list)
            or not 2 <= len(indices) <= 1024
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices)
            or not all(0 <= i < domain for i in indices)
            or len(set(indices)) != len(indices)
        ):
            raise FingerprintError("fingerprint indices must be 2-1024 distinct inputs in range")
        if not isinstance(gram, str) or not isinstance(tensor, str) or len(tensor) > 300:
            raise FingerprintError("fingerprint gram_f16 must be base64 text")
        try:
            raw = base64.b64decode(gram, validate=True)
        except ValueError as exc:
            raise FingerprintError("fingerprint gram_f16 is not base64") from exc
        k = len(indices)
        if len(raw) != k * (k - 1):  # k(k-1)/2 float16 values of 2 bytes
            raise FingerprintError("fingerprint gram_f16 has the wrong length for its indices")
        values = np.frombuffer(raw, dtype="<f2").astype(float)
        if not np.all(np.isfinite(values)) or np.any(np.abs(values) > 1.0 + 1e-3):
            raise FingerprintError("fingerprint gram_f16 holds values outside [-1, 1]")
        return cls(scheme, domain, tuple(indices), tuple(float(v) for v in values), tensor)

    def matrix(self) -> Any:
        """The full symmetric K x K Gram (ones on the diagonal), as a numpy array."""
        import numpy as np

        k = len(self.indices)
        out = np.eye(k)
        rows, cols = np.triu_indices(k, 1)
        out[rows, cols] = self.gram
        out[cols, rows] = self.gram
        return out


@dataclass(frozen=True)
class Comparison:
    """The answer of `shared_base`.

    `statistic` (Pearson r of the Gram entries) and `p_value` are None when the two are not
    comparable; `reason` then says why.
    """

    comparable: bool
    statistic: float | None
    p_value: float | None
    permutations: int
    reason: str
    shared: bool | None = (
        None  # the decision: p <= alpha and r >= MIN_EFFECT; None if not comparable
    )

    def to_json(self) -> dict[str, Any]:
        """JSON form, as the CLI and the API give it."""
        return {
            "comparable": self.comparable,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "shared": self.shared,
            "permutations": self.permutations,
            "reason": self.reason,
        }


def _token_ids(vocab: int, k: int) -> list[int]:
    """`k` token ids from the upper half of a vocabulary, the same for every model of that size."""
    lo = vocab // 2
    if vocab - lo < k:
        lo = 0
    if vocab < k:
        raise FingerprintError(f"a vocabulary of {vocab} has fewer than {k} tokens")
    return sorted(random.Random(_TOKEN_SEED + vocab).sample(range(lo, vocab), k))


def _cosine_gram(rows: Any) -> Any:
    import numpy as np

    rows = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(rows)):
        raise FingerprintError("input rows with zero norm or non-finite values")
    unit = rows / norms
    return unit @ unit.T


def _upper(matrix: Any) -> tuple[float, ...]:
    import numpy as np

    k = matrix.shape[0]
    return tuple(float(v) for v in matrix[np.triu_indices(k, 1)])


def _natural_key(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def fingerprint_tensors(tensors: Mapping[str, Any], *, tokens: int = DEFAULT_TOKENS) -> Fingerprint:
    """Fingerprint a model from its named weight tensors (numpy arrays or torch tensors).

    A tensor named like a token embedding (`embed_tokens`, `wte`, `token_embd`, ...) gives an
    embedding fingerprint over `tokens` rare token ids; otherwise the first 2-D `weight` in
    natural order (`0.weight` before `2.weight`) is taken as the input layer, and its columns
    (one per input feature) are fingerprinted.

    Raises:
        FingerprintError: no 2-D weight, or degenerate rows.
    """
    import numpy as np

    def as_array(value: Any) -> Any:
        if hasattr(value, "detach"):
            value = value.detach().float().cpu().numpy()
        return np.asarray(value, dtype=np.float64)

    embedding = sorted(n for n in tensors if _EMBEDDING_NAMES.search(n))
    if embedding:
        name = embedding[0]
        weight = as_array(tensors[name])
        if weight.ndim != 2:
            raise FingerprintError(f"{name} is not a matrix")
        vocab = weight.shape[0]
        ids = _token_ids(vocab, tokens)
        gram = _cosine_gram(weight[ids])
        return Fingerprint(EMBEDDING_SCHEME, vocab, tuple(ids), _upper(gram), name)
    matrices = sorted(
        (n for n in tensors if n.endswith("weight") and len(getattr(tensors[n], "shape", ())) == 2),
        key=_natural_key,
    )
    if not matrices:
        raise FingerprintError("no 2-D weight to fingerprint")
    name = matrices[0]
    weight = as_array(tensors[name])  # (hidden, inputs): one column per input feature
    width = weight.shape[1]
    if width < 2:
        raise FingerprintError(f"{name} has a single input")
    step = max(1, math.ceil(width / MAX_FEATURES))
    features = list(range(0, width, step))
    gram = _cosine_gram(weight[:, features].T)
    return Fingerprint(FIRST_LAYER_SCHEME, width, tuple(features), _upper(gram), name)


def fingerprint_path(path: str | Path, *, tokens: int = DEFAULT_TOKENS) -> Fingerprint:
    """Fingerprint the weights in a `.safetensors` file, a folder of them, or a `.gguf` file.

    Only the input layer is read (safetensors reads one tensor; a GGUF file is memory-mapped
    and its token embedding dequantised).

    Raises:
        FingerprintError: nothing readable, or no weight to fingerprint.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.safetensors")) or sorted(p.glob("*.gguf"))
        if not files:
            raise FingerprintError(f"{p} holds no .safetensors or .gguf file")
        if files[0].suffix == ".gguf":
            return _from_gguf(files[0], tokens)
        return _from_safetensors(files, tokens)
    if p.suffix == ".gguf":
        return _from_gguf(p, tokens)
    if p.suffix == ".safetensors":
        return _from_safetensors([p], tokens)
    raise FingerprintError(f"{p}: expected a .safetensors or .gguf file, or a folder of them")


def _from_safetensors(files: list[Path], tokens: int) -> Fingerprint:
    from safetensors import SafetensorError, safe_open

    try:
        return _read_safetensors(files, tokens, safe_open)
    except (SafetensorError, OSError, ValueError) as exc:
        raise FingerprintError(f"unreadable safetensors weights: {exc}") from exc


def _read_safetensors(files: list[Path], tokens: int, safe_open: Any) -> Fingerprint:
    names: dict[str, Path] = {}
    for f in files:
        with safe_open(str(f), "np") as fh:
            for key in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
                names.setdefault(key, f)
    embedding = sorted(n for n in names if _EMBEDDING_NAMES.search(n))
    wanted = embedding[:1] or sorted((n for n in names if n.endswith("weight")), key=_natural_key)
    loaded: dict[str, Any] = {}
    for name in wanted:
        with safe_open(str(names[name]), "np") as fh:
            value = fh.get_tensor(name)
        if value.ndim == 2:
            loaded[name] = value
            break
    return fingerprint_tensors(loaded, tokens=tokens)


def _from_gguf(path: Path, tokens: int) -> Fingerprint:
    try:
        from gguf import GGUFReader
        from gguf.quants import dequantize
    except ImportError as exc:
        raise FingerprintError("reading GGUF files needs the gguf package") from exc
    try:
        reader = GGUFReader(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise FingerprintError(f"unreadable GGUF file: {exc}") from exc
    for tensor in reader.tensors:
        if tensor.name == "token_embd.weight":
            values = dequantize(tensor.data, tensor.tensor_type)
            return fingerprint_tensors(
                {tensor.name: values.reshape(values.shape[0], -1)}, tokens=tokens
            )
    raise FingerprintError(f"{path} has no token_embd.weight")


def shared_base(
    a: Fingerprint,
    b: Fingerprint,
    *,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> Comparison:
    """Test whether two models share their input layer's initialisation.

    Args:
        a, b: fingerprints.
        permutations: relabellings drawn for the null; the smallest p-value is 1/(n+1).
        seed: the permutation stream, so an answer can be reproduced exactly.
        alpha: the p-value at or under which the null is rejected.
        min_effect: the correlation a shared initialisation must reach (see the module notes).

    Returns:
        The correlation of the two Grams and its permutation p-value, or "not comparable".
    """
    import numpy as np

    if a.scheme != b.scheme:
        return Comparison(False, None, None, 0, "different fingerprint schemes")
    if a.domain != b.domain or a.indices != b.indices:
        what = "vocabularies" if a.scheme == EMBEDDING_SCHEME else "input widths"
        return Comparison(False, None, None, 0, f"different {what} ({a.domain} vs {b.domain})")
    ga, gb = a.matrix(), b.matrix()
    k = ga.shape[0]
    rows, cols = np.triu_indices(k, 1)
    va = ga[rows, cols]
    va = va - va.mean()
    sa = float(np.sqrt((va * va).sum()))

    def corr(matrix: Any) -> float:
        vb = matrix[rows, cols]
        vb = vb - vb.mean()
        sb = float(np.sqrt((vb * vb).sum()))
        if sa == 0 or sb == 0:
            return 0.0
        return float((va * vb).sum() / (sa * sb))

    r = corr(gb)
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(permutations):
        perm = rng.permutation(k)
        if corr(gb[np.ix_(perm, perm)]) >= r:
            exceed += 1
    p = (1 + exceed) / (1 + permutations)
    shared = p <= alpha and r >= min_effect
    if shared:
        reason = "the input layers share an initialisation"
    elif p <= alpha:
        reason = f"correlated (r={r:.3f}) but below {min_effect}: shared input structure only"
    else:
        reason = "no evidence of a shared initialisation"
    return Comparison(True, r, p, permutations, reason, shared)
