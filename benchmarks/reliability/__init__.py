"""The reliability suite's scenarios: real processes, real faults.

Each scenario starts what it needs (a private `redis-server`, `skewless serve`,
`skewless materialize` or `skewless apply` as subprocesses), injects a fault (SIGKILL,
SIGSTOP, hostile requests, concurrency) and returns its figures and what it observed as
plain data. The tests in tests/reliability run them small and assert on what they
return; `python -m benchmarks.reliability` runs them long and writes a report.

- `processes`: redis-server and `skewless serve` as subprocesses (kill, freeze, restart);
- `repo`: the small feature repo every scenario builds in a folder of its own;
- `load`: many grpc.aio clients, Redis killed or frozen under them, memory under load;
- `fuzz`: hypothesis strategies of hostile requests and the codes each may get;
- `kills`: kill -9 of a materialization at observed moments, then a rerun;
- `applies`: several `skewless apply` at once against one registry.
"""
