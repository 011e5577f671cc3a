"""``perfgate bench`` and ``perfgate gate``: open-loop latency benchmarks and the gate.

Entry points: :func:`perfgate.bench.cli.bench_main` and :func:`perfgate.bench.cli.gate_main`
(``argv -> exit code``). Pure pieces: ``schedule`` (the open-loop schedule, ABBA order,
achieved rate), ``histogram`` (HDR wrappers), ``recorder`` (what a client measures),
``stats`` (exact rank tests over runs), ``gate`` (the verdict), ``results`` (the file schema).
Shells: ``loadgen`` (a client process), ``runner`` (one run over several client processes),
``server`` (a server under test as a subprocess), ``suite`` (scenarios x systems x runs),
``report`` (HTML + PNG), ``terminal`` (rich), ``scenarios/`` and ``peers/``.

Nothing is re-exported here: ``python -m perfgate.bench.cli`` must not find its module
already imported by the package.
"""
