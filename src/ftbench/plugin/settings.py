"""What a `pytest bench/` run was asked for, read from its options once: profile, data, policy.

    settings = Settings(config)       # a pytest.Config; unknown profile or job: UsageError
    settings.profile                  # the profile with the options' overrides applied
    settings.source, settings.policy  # the data source, the gates' policy (ftbench.config.build)

Everything else in the plugin asks these, not `config.getoption`.
"""

from __future__ import annotations

import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pytest

from ftbench.config.build import GatePolicy, data_source, gate_policy
from ftbench.config.options import overrides_from
from ftbench.config.profiles import (
    PROFILES,
    Profile,
    apply_overrides,
    check_job,
    default_profile_name,
    get_profile,
)
from ftbench.core.errors import ConfigError

if TYPE_CHECKING:
    from ftbench.stack.data import DataSource


class Settings:
    def __init__(self, config: pytest.Config) -> None:
        self.option = config.getoption
        name = self.option("ftb_profile")
        if name != "auto" and name not in PROFILES:
            raise pytest.UsageError(
                f"--ftb-profile: unknown profile {name!r}; choose from {', '.join(PROFILES)}, auto"
            )
        known = sorted({job.name for p in PROFILES.values() for job in p.jobs})
        unknown = [j for j in self.option("ftb_job") or () if j not in known]
        if unknown:
            raise pytest.UsageError(f"--ftb-job: unknown job(s) {unknown}; choose from {known}")

    @cached_property
    def profile(self) -> Profile:
        name = self.option("ftb_profile")
        overrides = overrides_from(self.option)
        try:
            profile = get_profile(default_profile_name() if name == "auto" else name)
            changed = apply_overrides(profile, **overrides)
            for job in overrides["jobs"] or ():
                profile.job(job)
            for job in changed.jobs:
                check_job(job)
        except ConfigError as exc:
            raise pytest.UsageError(f"ftbench: {exc}") from None
        return changed

    @cached_property
    def source(self) -> DataSource:
        return data_source(self.option)

    @cached_property
    def policy(self) -> GatePolicy:
        """Validates the tolerance options too (an unknown metric is a ConfigError)."""
        return gate_policy(self.option, self.profile)

    @property
    def progress_every(self) -> float:
        every = self.option("ftb_progress_every")
        if every is not None:
            return every
        return 5.0 if sys.stdout.isatty() else 30.0

    @property
    def updating_baselines(self) -> bool:
        return bool(self.option("ftb_update_baselines"))

    @property
    def seeds(self) -> int:
        return int(self.option("ftb_seeds"))

    @property
    def results_dir(self) -> str:
        return self.option("ftb_results_dir")

    @property
    def baselines_dir(self) -> str:
        return self.option("ftb_baselines_dir")

    @property
    def accelerate_config(self) -> str | None:
        return self.option("ftb_accelerate_config")

    @property
    def launch_timeout(self) -> float:
        return self.option("ftb_launch_timeout")

    def get(self, dest: str) -> Any:
        """An option by its dest, for what passes options on (a launched case's data)."""
        return self.option(dest)
