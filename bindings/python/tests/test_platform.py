"""The platform from Python on the embedded GitOps target: the golden path, errors by kind,
threads, fork, asyncio, progress callbacks and Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import paved
from conftest import cli

IMAGE = "ghcr.io/company/my-service:v1.2.3"


def test_golden_path_on_the_gitops_target(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")
    out = platform.deploy(app="my-service", image=IMAGE, env="production", replicas=3, cpu_limit="2000m")
    assert (out.revision, out.changed, out.dry_run) == (1, True, False)
    assert out.url == "https://my-service.production.example.com"
    assert out.release is not None and out.release.escape_hatches == ("cpu-limit=2000m",)
    assert (workdir / ".paved" / "gitops" / "production" / "my-service").is_dir()
    # Frozen, and the document is the CLI's.
    with pytest.raises(AttributeError):
        out.revision = 2  # type: ignore[misc]
    doc = out.to_dict()
    assert doc["record"]["revision"] == 1 and doc["dry_run"] is False

    # Deploying the same again changes nothing.
    again = platform.deploy(app="my-service", image=IMAGE, env="production", replicas=3, cpu_limit="2000m")
    assert (again.revision, again.changed) == (1, False)

    plan = platform.plan(app="my-service", image="ghcr.io/company/my-service:v1.2.4", env="production", replicas=3)
    assert (plan.revision, plan.changed, plan.dry_run, plan.target) == (2, True, True, "gitops")
    kinds = [o["kind"] for o in plan.objects]
    assert "Deployment" in kinds and "HorizontalPodAutoscaler" in kinds
    deployment = next(o for o in plan.objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("v1.2.4")
    # A plan writes nothing.
    assert platform.status("my-service", "production").revision == 1

    objects = platform.render(app="my-service", image=IMAGE, env="staging", no_hpa=True)
    assert all(isinstance(o, dict) for o in objects)
    assert "HorizontalPodAutoscaler" not in [o["kind"] for o in objects]

    platform.deploy(app="my-service", image="ghcr.io/company/my-service:v1.2.4", env="production", replicas=3)
    status = platform.status("my-service", "production")
    assert (status.revision, status.in_sync, status.image) == (2, True, "ghcr.io/company/my-service:v1.2.4")
    history = platform.history("my-service", "production")
    assert [r.revision for r in history] == [2, 1]
    rolled = platform.rollback("my-service", "production")
    assert (rolled.revision, rolled.image) == (3, IMAGE)
    assert rolled.release is not None and (rolled.release.cause, rolled.release.rollback_to) == ("rollback", 1)
    assert [a.app for a in platform.list().apps] == ["my-service"]
    gone = platform.destroy("my-service", "production")
    assert "Deployment/my-service" in gone.deleted
    with pytest.raises(paved.NotFound):
        platform.status("my-service", "production")


def test_results_are_the_cli_documents(workdir: Path) -> None:
    """The same dry run through the CLI and Python: the same document (but the times)."""
    platform = paved.Platform(state_dir=workdir / "py")
    args = dict(app="checkout", image=IMAGE, env="staging", replicas=2, memory_limit="512Mi", no_pdb=True)
    mine = platform.deploy(**args, dry_run=True).to_dict()  # type: ignore[arg-type]
    run = cli("--state-dir", str(workdir / "cli"), "--output", "json", "deploy", "--app", "checkout", "--image", IMAGE,
              "--env", "staging", "--replicas", "2", "--memory-limit", "512Mi", "--no-pdb", "--dry-run", cwd=workdir)
    assert run.returncode == 0, run.stderr
    theirs = json.loads(run.stdout)
    for doc in (mine, theirs):
        doc["record"].pop("deployed_at")
        doc["record"].pop("deployed_by")
        doc.pop("location")
    assert mine == theirs


def test_config_from_a_dict_and_from_a_path(workdir: Path) -> None:
    config = {"domain": "example.org", "environments": {"qa": {"replicas": 1}}}
    platform = paved.Platform(config, state_dir=workdir / ".paved")
    out = platform.deploy(app="web", image=IMAGE, env="qa")
    assert out.url == "https://web.qa.example.org"
    (workdir / "paved.toml").write_text('domain = "example.net"\n[environments.qa]\nreplicas = 1\n')
    from_path = paved.Platform(workdir / "paved.toml", state_dir=workdir / "other")
    assert from_path.config_path is not None and from_path.config_path.name == "paved.toml"
    assert from_path.deploy(app="web", image=IMAGE, env="qa").url == "https://web.qa.example.net"
    # Discovered as the CLI discovers it: paved.toml in the current directory.
    assert paved.Platform(state_dir=workdir / "third").deploy(app="web", image=IMAGE, env="qa").url == (
        "https://web.qa.example.net"
    )


def test_every_error_is_a_class_of_its_kind(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")
    with pytest.raises(paved.InvalidInput) as bad_env:
        platform.deploy(app="my-service", image=IMAGE, env="prodution")
    assert bad_env.value.kind == "invalid_input"
    assert bad_env.value.hint == 'did you mean "production"?'
    assert isinstance(bad_env.value, ValueError) and isinstance(bad_env.value, paved.PavedError)
    assert 'did you mean "production"?' in str(bad_env.value)

    for bad in (
        dict(cpu_limit="2 cores"),
        dict(replicas=-1),
        dict(image="not an image"),
        dict(target="kubernetes"),
        dict(custom_manifests=[workdir / "missing.yaml"]),
        dict(secrets={"DB_PASSWORD": "plain-text-password"}),
    ):
        with pytest.raises(paved.InvalidInput) as e:
            platform.deploy(**{"app": "my-service", "image": IMAGE, "env": "production", **bad})  # type: ignore[arg-type]
        assert e.value.hint, bad
    with pytest.raises(paved.InvalidInput) as target:
        platform.deploy(app="my-service", image=IMAGE, env="production", target="gitopz")
    assert target.value.hint == 'did you mean "gitops"?'
    # Nothing was written by any of them.
    assert not (workdir / ".paved" / "gitops").exists()

    with pytest.raises(paved.NotFound) as missing:
        platform.history("never-deployed", "production")
    assert missing.value.kind == "not_found" and isinstance(missing.value, LookupError)

    # The baseline refuses a privileged container brought in by an escape hatch.
    overrides = workdir / "overrides.yaml"
    overrides.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: my-service\n        securityContext:\n          privileged: true\n"
    )
    with pytest.raises(paved.PolicyDenied) as denied:
        platform.deploy(app="my-service", image=IMAGE, env="production", custom_manifests=[overrides])
    assert denied.value.kind == "denied" and isinstance(denied.value, paved.Denied)
    assert any(v["policy"] == "disallow-privileged-containers" for v in denied.value.violations)
    assert not (workdir / ".paved" / "gitops").exists()


def test_eight_threads_deploying(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")
    results: dict[int, paved.DeployResult] = {}
    errors: list[BaseException] = []

    def deploy(i: int) -> None:
        try:
            for n in range(3):
                results[i * 10 + n] = platform.deploy(
                    app=f"app-{i}", image=f"ghcr.io/company/app:v{n}", env="staging"
                )
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=deploy, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(8):
        assert [results[i * 10 + n].revision for n in range(3)] == [1, 2, 3]
        assert platform.status(f"app-{i}", "staging").image == "ghcr.io/company/app:v2"


def _child_deploys(state_dir: str, queue: Any) -> None:
    platform = _FORKED["platform"]
    out = platform.deploy(app="forked", image=IMAGE, env="staging")
    queue.put((os.getpid(), out.revision, out.changed))


_FORKED: dict[str, paved.Platform] = {}


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_fork_gets_a_runtime_of_its_own(workdir: Path) -> None:
    platform = paved.Platform(state_dir=workdir / ".paved")
    platform.deploy(app="parent", image=IMAGE, env="staging")  # the runtime and the platform exist now
    _FORKED["platform"] = platform
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_child_deploys, args=(str(workdir), queue)) for _ in range(2)]
    for c in children:
        c.start()
    for c in children:
        c.join(timeout=60)
        assert c.exitcode == 0
    answers = sorted(queue.get(timeout=5) for _ in children)
    assert {a[1] for a in answers} <= {1}
    assert [a[2] for a in answers].count(True) >= 1
    # The parent goes on working after its children.
    assert platform.deploy(app="parent", image="ghcr.io/company/my-service:v2", env="staging").revision == 2


def silent_cluster(workdir: Path) -> tuple[socket.socket, Path]:
    """A cluster that accepts connections and never answers, and a kubeconfig naming it."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: silent\n"
        f"clusters:\n- name: silent\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\n"
        "users:\n- name: u\n  user:\n    token: t\n"
        "contexts:\n- name: silent\n  context:\n    cluster: silent\n    user: u\n"
    )
    return silent, kubeconfig


def test_asyncio_calls_run_concurrently(workdir: Path) -> None:
    silent, kubeconfig = silent_cluster(workdir)
    platform = paved.AsyncPlatform(state_dir=workdir / ".paved", kubeconfig=kubeconfig)

    async def main() -> tuple[list[paved.DeployResult], bool]:
        # A deploy to a cluster that never answers is under way while fifty others finish: the
        # calls do not wait for each other. Cancelling it drops its work.
        stuck = asyncio.create_task(platform.deploy(app="stuck", image=IMAGE, env="staging", target="kube"))
        await asyncio.sleep(0.2)
        fifty = await asyncio.gather(*(platform.deploy(app=f"svc-{i}", image=IMAGE, env="staging") for i in range(50)))
        still_running = not stuck.done()
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        await platform.settle()
        return list(fifty), still_running

    try:
        results, still_running = asyncio.run(main())
    finally:
        silent.close()
    assert still_running
    assert [r.revision for r in results] == [1] * 50
    listing = asyncio.run(platform.list("staging"))
    assert sorted(a.app for a in listing.apps) == sorted(f"svc-{i}" for i in range(50))


def test_asyncio_errors_are_the_same_classes(workdir: Path) -> None:
    platform = paved.AsyncPlatform(state_dir=workdir / ".paved")
    with pytest.raises(paved.InvalidInput) as e:
        asyncio.run(platform.deploy(app="x", image=IMAGE, env="prodution"))
    assert e.value.hint == 'did you mean "production"?'


def test_a_progress_callback_that_raises(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reported: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    calls: list[str] = []

    def broken(p: paved.Progress) -> None:
        calls.append(p.step)
        raise RuntimeError("the dashboard is down")

    platform = paved.Platform(state_dir=workdir / ".paved", progress=broken)
    out = platform.deploy(app="my-service", image=IMAGE, env="staging")
    # The deploy finished; the callback was called once, and its exception reported once.
    assert (out.revision, out.changed) == (1, True)
    assert calls == ["validate"]
    assert len(reported) == 1 and isinstance(reported[0].exc_value, RuntimeError)
    # A later call gets its callback again.
    steps: list[str] = []
    platform.deploy(app="other", image=IMAGE, env="staging", progress=lambda p: steps.append(p.step))
    assert steps[0] == "validate" and "record" in steps


def test_ctrl_c_cancels_a_deploy_and_reports(workdir: Path) -> None:
    """A cluster that accepts connections and never answers: Ctrl-C stops the deploy, and
    KeyboardInterrupt carries what the target restored (here: nothing was applied)."""
    silent, kubeconfig = silent_cluster(workdir)
    platform = paved.Platform(state_dir=workdir / ".paved", kubeconfig=kubeconfig)
    timer = threading.Timer(1.0, lambda: __import__("_thread").interrupt_main())
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as interrupted:
            platform.deploy(app="my-service", image=IMAGE, env="staging", target="kube")
    finally:
        timer.cancel()
        silent.close()
    notes = getattr(interrupted.value, "__notes__", [])
    assert notes and notes[0].startswith("paved: "), notes
