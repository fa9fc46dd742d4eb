"""Leadline's benchmarks: ``make bench`` (``python -m benchmarks``) runs them and writes docs/benchmarks.md.

The harness (:mod:`benchmarks.harness`) measures a bare aiohttp GIF handler as the floor every figure is read
against, then runs whichever of ``collector_bench``, ``enricher_bench`` and ``crm_bench`` exist in this package.
"""
