"""Built once from the options: a case's spec, the data source, and the gates' policy.

    from ftbench.config.build import case_spec, data_source, gate_policy
    source = data_source(config.getoption)            # any getter of an option by its dest
    spec = case_spec(job, profile, checkpoint="minilm-l6", padding="dynamic")
    policy = gate_policy(config.getoption, profile)   # tolerances, strictness, busy wait

The pytest plugin and `ftbench run` both build through here, so a case means the same in each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ftbench.core.measures import Tolerance
from ftbench.core.spec import CaseSpec
from ftbench.stack.data import DataSource
from ftbench.tasks import tolerances_with

if TYPE_CHECKING:
    from ftbench.config.profiles import Job, Profile

Getter = Callable[[str], Any]  # an option's value by its dest: `config.getoption`, argparse's


def data_source(get: Getter) -> DataSource:
    """Where every task reads its data: `--ftb-data-dir`, the user's files and columns."""
    return DataSource(
        data_dir=get("ftb_data_dir"),
        train_file=get("ftb_train_file"),
        validation_file=get("ftb_validation_file"),
        test_file=get("ftb_test_file"),
        text_columns=tuple(get("ftb_text_columns")),
        label_column=get("ftb_label_column"),
        prompt_column=get("ftb_prompt_column"),
        completion_column=get("ftb_completion_column"),
        chosen_column=get("ftb_chosen_column"),
        rejected_column=get("ftb_rejected_column"),
        preference_data=get("ftb_preference_data"),
        hub_dataset=get("ftb_hub_dataset"),
        hub_config=get("ftb_hub_config"),
    )


def source_options(source: DataSource) -> Getter:
    """`data_source`'s inverse: a getter of the data options by dest that gives `source` back
    (a job file's data, passed to a launched case as options)."""
    fields = {
        "ftb_data_dir": source.data_dir,
        "ftb_train_file": source.train_file,
        "ftb_validation_file": source.validation_file,
        "ftb_test_file": source.test_file,
        "ftb_text_columns": list(source.text_columns),
        "ftb_label_column": source.label_column,
        "ftb_prompt_column": source.prompt_column,
        "ftb_completion_column": source.completion_column,
        "ftb_chosen_column": source.chosen_column,
        "ftb_rejected_column": source.rejected_column,
        "ftb_preference_data": source.preference_data,
        "ftb_hub_dataset": source.hub_dataset,
        "ftb_hub_config": source.hub_config,
    }
    return fields.get


def case_spec(
    job: Job,
    profile: Profile,
    *,
    checkpoint: str,
    padding: str,
    device: str = "cpu",
    precision: str = "fp32",
    method: str = "full",
    processes: int = 1,
) -> CaseSpec:
    """One point of a job's matrix, trained with the job's settings for its method."""
    return CaseSpec(
        job=job.name,
        checkpoint=checkpoint,
        padding=padding,
        device=device,
        precision=precision,
        method=method,
        training=job.training_for(method),
        profile=profile.name,
        max_length=job.max_length or profile.max_length,
        lora=job.lora if method != "full" else None,
        task=job.task,
        processes=processes,
    )


@dataclass(frozen=True)
class GatePolicy:
    """How strictly a case's numbers are judged; read from the options once per run."""

    tolerances: dict[str, Tolerance] = field(default_factory=lambda: tolerances_with(None))
    require_baseline: bool = False  # no (comparable) baseline fails instead of "no baseline"
    strict_repro: bool = False  # same environment and seed, other numbers: fail, not warn
    strict: bool = False  # a throughput case that stays on a busy device fails
    busy_wait: float = 60.0  # seconds a case timed on a busy device waits to measure again

    def for_job(self, job: Job | None) -> GatePolicy:
        """This policy with the job's own tolerances over the profile's (None: no job known,
        as for a record whose job file is elsewhere)."""
        if job is None or not job.tolerances:
            return self
        return replace(self, tolerances=tolerances_with(job.tolerances, base=self.tolerances))


def gate_policy(get: Getter, profile: Profile) -> GatePolicy:
    """The policy of `--ftb-require-baseline`, `--ftb-strict-repro`, `--ftb-strict`,
    `--ftb-busy-wait` and the profile's tolerances (with `--ftb-tolerance` applied)."""
    return GatePolicy(
        tolerances=tolerances_with(profile.tolerances),
        require_baseline=bool(get("ftb_require_baseline")),
        strict_repro=bool(get("ftb_strict_repro")),
        strict=bool(get("ftb_strict")),
        busy_wait=float(get("ftb_busy_wait")),
    )
