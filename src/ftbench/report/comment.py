"""A pull request's comment: what regressed against the base's baselines, what was not judged.

    ftbench comment shards/*/results/runs --baselines base/results/baselines \
        --run-url "$RUN_URL" --out comment.md

    from ftbench.report.comment import case_verdicts, comment
    text = comment(case_verdicts(results, BaselineStore("base/results/baselines")), run_url)

Each case (its seeds together, re-measures folded in) is judged against the entry of its
hardware id and profile in the given baselines, by the same functions as the pytest gate
(`ftbench.judge.verdict`), so the comment and the test outcome agree. Give it the baselines of
the merge base, not of the pull request's head: a pull request that re-records its own
baselines must not grade itself. The comment is short on purpose (tables of at most six
columns) and carries a marker, so a workflow updates one comment instead of adding one per push.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ftbench.config.build import GatePolicy
from ftbench.config.profiles import known_profile
from ftbench.core.errors import BaselineError, ConfigError, FtbenchError
from ftbench.core.formats import fmt_value
from ftbench.judge import verdict
from ftbench.judge.baselines import Verdict
from ftbench.report.tables import fold_remeasures
from ftbench.tasks import tolerances_with

if TYPE_CHECKING:
    from ftbench.config.profiles import Job
    from ftbench.core.record import CaseResult
    from ftbench.judge.baselines import BaselineStore

MARKER = "<!-- ftbench-comment -->"  # finds the comment to update on the next push
SHOWN = 20  # rows of a table before the rest is summarised


@dataclass
class CaseVerdict:
    case_id: str
    hardware_id: str
    status: str  # "within bounds", "REGRESSED", "no baseline", "not gated: ..."
    failed: list[Verdict] = field(default_factory=list)
    baseline: dict[str, float] = field(default_factory=dict)  # the centre each failure crossed


def case_verdicts(results: list[CaseResult], store: BaselineStore) -> list[CaseVerdict]:
    """Each case's verdict against `store`, as the pytest gate gives it (without re-measuring:
    the records are what was measured)."""
    cases: dict[tuple[str, str, str], list[CaseResult]] = {}
    for result, _ in fold_remeasures(results):
        key = (result.environment.get("hardware_id") or "?", result.profile, result.case_id)
        cases.setdefault(key, []).append(result)
    out = []
    for (hardware_id, profile, case_id), seeds in sorted(cases.items()):
        seeds.sort(key=lambda r: r.training.get("seed") or 0)
        job, policy = _job_and_policy(profile, seeds[0].job)
        try:
            entry = store.entry(hardware_id, profile, case_id)
            path = store.path(hardware_id, profile)
            reason = verdict.comparable(case_id, seeds[0], entry, path, policy)
        except (BaselineError, FtbenchError) as exc:
            out.append(CaseVerdict(case_id, hardware_id, f"not gated: {exc}"))
            continue
        if reason is not None:
            out.append(CaseVerdict(case_id, hardware_id, reason))
            continue
        outcome = verdict.gate_case(case_id, seeds, job, entry, policy)
        centres = {
            v.metric: (entry["metrics"][v.metric].get("median") or 0.0)
            if policy.tolerances[v.metric].relative is not None
            else entry["metrics"][v.metric]["mean"]
            for v in outcome.failed
        }
        status = "REGRESSED" if outcome.failed else outcome.status()
        out.append(CaseVerdict(case_id, hardware_id, status, outcome.failed, centres))
    return out


def _job_and_policy(profile: str, job_name: str) -> tuple[Job | None, GatePolicy]:
    """The job's gates and tolerances (the profile's, with the job's own), for a built-in
    profile; all metrics and the default tolerances otherwise."""
    try:
        known = known_profile(profile)
        if known is None:
            return None, GatePolicy()
        job = known.job(job_name)
        return job, GatePolicy(tolerances=tolerances_with(known.tolerances)).for_job(job)
    except ConfigError:
        return None, GatePolicy()


def comment(verdicts: list[CaseVerdict], run_url: str | None = None) -> str:
    """The comment's markdown: a headline, the regressions, what was not judged and why."""
    regressed = [v for v in verdicts if v.failed]
    unjudged = [v for v in verdicts if not v.failed and v.status != "within bounds"]
    within = len(verdicts) - len(regressed) - len(unjudged)
    if regressed:
        head = f"**{len(regressed)} of {len(verdicts)} cases regressed** beyond noise"
    elif within:
        head = f"no regression: {within} of {len(verdicts)} cases within bounds"
    else:
        head = f"nothing judged: none of {len(verdicts)} cases could be gated"
    lines = [MARKER, f"### ftbench: {head}", ""]
    if regressed:
        lines += [
            "| case | metric | value | baseline | change | bound |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        rows = [(v, f) for v in regressed for f in v.failed]
        for case, failed in rows[:SHOWN]:
            centre = case.baseline.get(failed.metric)
            change = f"{(failed.value - centre) / centre:+.1%}" if centre else "-"
            lines.append(
                f"| `{case.case_id}` | {failed.metric} | {fmt_value(failed.value)} | "
                f"{fmt_value(centre) if centre is not None else '-'} | {change} | "
                f"{fmt_value(failed.bound)} |"
            )
        lines += [f"| … | {len(rows) - SHOWN} more | | | | |"] if len(rows) > SHOWN else []
        lines.append("")
    if unjudged:
        lines += [f"<details><summary>{len(unjudged)} not judged</summary>", ""]
        lines += [f"- `{v.case_id}` ({v.hardware_id}): {v.status}" for v in unjudged[:SHOWN]]
        lines += [f"- … and {len(unjudged) - SHOWN} more"] if len(unjudged) > SHOWN else []
        lines += ["", "</details>", ""]
    if regressed and within:
        lines += [f"{within} other case(s) within bounds.", ""]
    if run_url:
        lines.append(f"[The run, its records and report]({run_url})")
    return "\n".join(lines).rstrip() + "\n"
