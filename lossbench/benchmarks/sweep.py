"""Run a sweep: plan, resume, execute, store, record the resolved spec."""

from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossbench.benchmarks.executors import DaskExecutor, LocalExecutor
from lossbench.benchmarks.plan import Plan, describe_plan, plan_sweep
from lossbench.benchmarks.run import run_job
from lossbench.benchmarks.spec import SweepSpec
from lossbench.benchmarks.store import ResultStore
from lossbench.errors import OutputError
from lossbench.files import write_atomic

VERSIONED = ("lossbench", "numpy", "scipy", "simpy", "pesq", "pystoi", "speechmos", "onnxruntime", "torch", "pandas")


def git_revision() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                           timeout=5)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    vers = {}
    for p in VERSIONED:
        try:
            vers[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    try:
        from lossbench.codecs.opus import opus_version

        vers["libopus"] = opus_version("build")
    except Exception:
        pass
    try:
        from lossbench.codecs.opus import opus_version

        vers["libopus_system"] = opus_version("system")
    except Exception:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": vers,
            "git_revision": git_revision() or "unknown"}


def write_spec(spec: SweepSpec, plan: Plan, run_dir: Path) -> Path:
    import tomli_w

    d = spec.to_dict()
    d["resolved"] = {
        "clips": [c.id for c in plan.clips],
        "channels": [c.key for c in plan.channels],
        "codecs": sorted({j.codec_spec for j in plan.jobs}),
        "skipped_pairs": [list(p) for p in plan.skipped_pairs],
        "tasks": plan.num_tasks,
        "models": plan.models,
    }
    d["environment"] = environment()
    d["environment"]["written_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    p = run_dir / "spec.toml"
    write_atomic(p, tomli_w.dumps(_clean(d)))
    return p


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items() if v is not None}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x if v is not None]
    return x


def check_models(plan: Plan, run_dir: Path) -> None:
    """Refuse to resume a run whose finished rows came from other model files than the plan's.

    Task keys name the codec spec, not the weights behind it: after a model is
    retrained, resuming would silently keep the old model's results. Runs
    recorded before model hashes were kept carry none and are not checked.
    """
    import tomllib

    from lossbench.errors import ConfigError

    p = run_dir / "spec.toml"
    if not p.exists():
        return
    old = tomllib.loads(p.read_text()).get("resolved", {}).get("models", {})
    for codec, files in plan.models.items():
        for role, h in files.items():
            was = old.get(codec, {}).get(role)
            if was is not None and was != h:
                raise ConfigError(
                    f"{run_dir} holds results of {codec!r} made with another {role} model file (sha256 {was}, "
                    f"now {h}); resuming would mix the two: sweep into a new --out directory, or delete {run_dir}")


@dataclass
class SweepResult:
    run_dir: Path
    results: Path | None
    tasks: int
    ran: int
    skipped: int
    errors: int


def run_sweep(spec: SweepSpec, run_dir: str | Path, progress: bool = True) -> SweepResult:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_sweep(spec, run_dir)
    store = ResultStore(run_dir)
    done = store.done_keys()
    if done:
        check_models(plan, run_dir)
    write_spec(spec, plan, run_dir)
    todo_jobs = [j for j in plan.jobs if set(j.task_keys()) - done]
    n_todo = sum(len(set(j.task_keys()) - done) for j in todo_jobs)
    if "plcmos" in plan.spec.metrics and todo_jobs:
        from lossbench.metrics.learned import prepare_plcmos

        prepare_plcmos()  # the split model cached once here, not built by every worker
    executor = DaskExecutor(spec.scheduler) if spec.scheduler else LocalExecutor(spec.workers)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_todo, desc=f"sweep {spec.name}", unit="task", mininterval=1.0)
    ran = errors = 0
    try:
        args = ((j, frozenset(done & set(j.task_keys()))) for j in todo_jobs)
        for _, rows in executor.map_unordered(run_job, args):
            store.append(rows)
            ran += len(rows)
            errors += sum(r["status"] != "ok" for r in rows)
            if bar is not None:
                bar.update(len(rows))
                bar.set_postfix(errors=errors)
            store.consolidate(every_s=30.0)
    finally:
        if bar is not None:
            bar.close()
        if isinstance(executor, DaskExecutor):
            executor.close()
        try:
            res = store.consolidate()
        except OutputError:
            res = None  # the finished rows stay in parts/; the error that stopped the sweep is the one raised
    if res is None:
        res = store.consolidate()
    return SweepResult(run_dir, res, plan.num_tasks, ran, plan.num_tasks - n_todo, errors)


__all__ = ["SweepResult", "describe_plan", "run_sweep"]


def recompute_task(run_dir: str | Path, task: str) -> dict[str, Any]:
    """Recompute one row from the run's recorded ``spec.toml`` and its task key, alone."""
    import tomllib

    from lossbench.benchmarks.spec import spec_from_dict
    from lossbench.errors import ConfigError

    run_dir = Path(run_dir)
    p = run_dir / "spec.toml"
    if not p.exists():
        raise ConfigError(f"{run_dir}: no spec.toml; is this a run directory?")
    d = tomllib.loads(p.read_text())
    spec = spec_from_dict({k: v for k, v in d.items() if k not in ("resolved", "environment")}, where=str(p))
    plan = plan_sweep(spec, run_dir)
    for job in plan.jobs:
        keys = job.task_keys()
        if task in keys:
            job.keep_audio = False
            rows = run_job(job, frozenset(k for k in keys if k != task))
            return rows[0]
    raise ConfigError(f"task {task!r} is not part of the sweep in {p}")
