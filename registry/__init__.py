"""Studbook's service: HTTP API, persistence, ingest of signed statements, CLI.

`registry` depends on `lineage` for every rule about artifacts, relations and signatures, and
answers graph questions with SQL where speed matters; the tests hold the two to the same answers.
"""
