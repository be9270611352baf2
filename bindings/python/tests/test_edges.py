"""Edges: re-entrant callbacks, hostile input, values that must stay hidden, options that
would do nothing, fork-safe ledgers and policy sets."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

import paved
from conftest import ROOT

IMAGE = "ghcr.io/company/my-service:v1.2.3"


def test_a_progress_callback_may_call_paved(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")
    platform.deploy(app="first", image=IMAGE, env="staging")
    seen: list[int] = []
    threads: set[int] = set()

    def callback(p: paved.Progress) -> None:
        threads.add(threading.get_ident())
        if p.step == "validate":
            seen.append(len(platform.list("staging").apps))

    platform.deploy(app="second", image=IMAGE, env="staging", progress=callback)
    # The work goes on while the callback runs: the list has the first app, maybe the second.
    assert len(seen) == 1 and seen[0] in (1, 2)
    # Blocking calls deliver progress on the calling thread.
    assert threads == {threading.get_ident()}


def test_async_progress_runs_on_the_event_loop_thread(workdir: Path) -> None:
    platform = paved.AsyncPlatform(state_dir=workdir / ".paved")
    threads: set[int] = set()

    async def main() -> int:
        loop_thread = threading.get_ident()
        await platform.deploy(app="a", image=IMAGE, env="staging", progress=lambda p: threads.add(threading.get_ident()))
        await asyncio.sleep(0)  # the last scheduled callbacks
        return loop_thread

    assert threads == {asyncio.run(main())}


def test_hostile_input_is_refused_not_fatal(workdir: Path) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100_000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ValueError, match="nested more than"):
        paved.Platform(deep, state_dir=workdir / "a")
    with pytest.raises(TypeError, match="keys must be strings"):
        paved.Platform({1: "x"}, state_dir=workdir / "b")  # type: ignore[dict-item]
    platform = paved.Platform(state_dir=workdir / ".paved")
    for kwargs in (dict(replicas=2**80), dict(replicas=-1)):
        with pytest.raises(paved.InvalidInput):
            platform.deploy(app="a", image=IMAGE, env="staging", **kwargs)  # type: ignore[arg-type]
    platform.deploy(app="a", image=IMAGE, env="staging")
    with pytest.raises(paved.InvalidInput):
        platform.history("a", "staging", max=-1)
    with pytest.raises(paved.InvalidInput):
        platform.rollback("a", "staging", to=-1)
    with pytest.raises(paved.InvalidInput, match="is not a valid app name|invalid app"):
        platform.status("../../etc", "staging")


def test_a_value_given_as_a_secret_reference_is_not_shown(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")
    with pytest.raises(paved.InvalidInput) as e:
        platform.deploy(app="a", image=IMAGE, env="staging", secrets={"DB_PASSWORD": "hunter2-very-secret"})
    assert "hunter2" not in str(e.value) + repr(e.value) + str(e.value.hint)
    assert "(value hidden)" in str(e.value)


def test_kube_options_on_a_gitops_environment_are_refused(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")
    for kwargs in (dict(timeout=30.0), dict(rollback=False), dict(force_conflicts=True), dict(history_max=5)):
        with pytest.raises(paved.InvalidInput) as e:
            platform.deploy(app="a", image=IMAGE, env="staging", **kwargs)  # type: ignore[arg-type]
        assert "kube target only" in str(e.value) and e.value.hint
    with pytest.raises(paved.InvalidInput):
        platform.deploy(app="a", image=IMAGE, env="staging", target="kube", timeout=0.001)
    # `list(target=...)` without an environment redirects every environment, as `paved list --target`.
    listing = platform.list(target="kube")
    assert listing.unavailable and not listing.apps


def test_ledger_paths_and_bounds(workdir: Path) -> None:
    ledger = paved.Ledger(".paved")
    assert (workdir / ".paved").is_dir() and ledger.path.resolve().parent == (workdir / ".paved").resolve()
    assert paved.Platform(state_dir=".paved").deploy(app="a", image=IMAGE, env="staging").revision == 1
    file = paved.Ledger(workdir / "other.db")
    assert file.path == workdir / "other.db"
    for days in (1e12, float("nan"), 0.001):
        with pytest.raises(paved.InvalidInput):
            ledger.dora(window_days=days)
    with pytest.raises(paved.InvalidInput):
        ledger.adoption(window_days=-1)

    def failing() -> Any:
        yield {"type": "deployment", "id": "d-1", "service": "s", "team": "t", "environment": "production",
               "status": "success", "started_at": "2026-11-01T10:00:00Z", "finished_at": "2026-11-01T10:05:00Z"}
        raise RuntimeError("the export broke")

    with pytest.raises(RuntimeError, match="the export broke"):
        ledger.import_events(failing(), strict=True)
    assert ledger.dora(window_days=3650, now="2026-11-30T00:00:00Z")["deployment_frequency"]["deployments"] == 0


def _child_ledger(path: str, queue: Any) -> None:
    ledger = _SHARED["ledger"]
    assert isinstance(ledger, paved.Ledger)
    report = ledger.import_events([{"type": "deployment", "id": "child", "service": "s", "team": "t",
                                    "environment": "production", "status": "success",
                                    "started_at": "2026-11-01T10:00:00Z", "finished_at": "2026-11-01T10:05:00Z"}])
    queue.put(report["deployments"])


_SHARED: dict[str, object] = {}


def test_a_ledger_used_after_fork(workdir: Path) -> None:
    ledger = paved.Ledger(workdir / "state")
    ledger.dora()
    _SHARED["ledger"] = ledger
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_ledger, args=(str(workdir), queue))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0 and queue.get(timeout=5) == 1
    assert ledger.dora(window_days=365, now="2026-11-30T00:00:00Z")["deployment_frequency"]["deployments"] == 1


def test_policy_set_needs_a_policy_and_empty_writes_are_refused(workdir: Path) -> None:
    with pytest.raises(paved.InvalidInput):
        paved.PolicySet([])
    plugin = ROOT / "plugins" / "disallow-latest-tag" / "policy.wasm"
    policies = paved.PolicySet([plugin])
    assert policies.check([])["totals"]["objects"] == 0


def test_empty_or_bad_secret_writes_are_refused(bao: dict[str, Any]) -> None:
    store = paved.VaultStore()
    with pytest.raises(paved.InvalidInput):
        store.put("platform/x", {})
    with pytest.raises(paved.InvalidInput):
        store.put("platform/x", {"bad key": "v"})
    with pytest.raises(paved.InvalidInput):
        paved.VaultStore(mount="/")


def test_an_unknown_keyword_is_a_type_error(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")
    with pytest.raises(TypeError, match="unexpected keyword argument 'cpu_limt'"):
        platform.deploy(app="a", image=IMAGE, env="staging", cpu_limt="1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'timeout'"):
        platform.plan(app="a", image=IMAGE, env="staging", timeout=5)  # type: ignore[call-arg]


def test_a_callback_cannot_change_what_its_call_holds(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[Any] = []
    monkeypatch.setattr("sys.unraisablehook", reported.append)
    platform = paved.Platform(state_dir=workdir / ".paved")

    def redeploy(p: paved.Progress) -> None:
        platform.deploy(app="a", image=IMAGE, env="staging")

    out = platform.deploy(app="a", image=IMAGE, env="staging", progress=redeploy)
    assert out.revision == 1
    assert len(reported) == 1 and isinstance(reported[0].exc_value, paved.Conflict)


def test_ctrl_c_inside_a_progress_callback_stops_the_call(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")

    def interrupt(p: paved.Progress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        platform.deploy(app="a", image=IMAGE, env="staging", progress=interrupt)
