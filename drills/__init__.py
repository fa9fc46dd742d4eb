"""Failure drills (``make drill``, ``python -m drills``): the faults an SRE fears, rehearsed under a fixed load.

Why a top-level package next to ``benchmarks/`` rather than a ``leadline`` subcommand of the local stack
package: a drill is a measurement run from a checkout, like a benchmark. It writes docs/reliability.md, reuses
the benchmark harness's machine description, and needs the load generator and Kafka/PostgreSQL readers that
have no place in ``leadline_localstack`` (which ``make up`` and the tests import, and which must stay small).
It drives the local stack only through ``leadline_localstack``'s own functions (start/stop Kafka and
PostgreSQL, start/stop a service), on a stack of its own: its run directory is ``.run/drill/`` and every port
differs from ``make up``'s, so a drill never touches the developer's stack or the tests.

Modules: :mod:`drills.stack` (the isolated stack and its faults), :mod:`drills.load` (the fixed load),
:mod:`drills.observe` (what reached Kafka and PostgreSQL), :mod:`drills.scenarios` (the six drills),
:mod:`drills.report` (the figures and the Markdown).
"""
