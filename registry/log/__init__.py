"""The transparency log of accepted envelopes: storage, routes, offline verification, audit."""
