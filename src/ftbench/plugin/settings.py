"""What a `pytest bench/` run was asked for, read from its options once: profile, data, policy.

    settings = Settings(config)       # a pytest.Config; unknown profile or job: UsageError
    settings.profile                  # the profile with the options' overrides applied
    settings.source                   # the run's data source (ftbench.config.build)
    settings.policy_for("smoke")      # a profile's gate policy

Everything else in the plugin asks these, not `config.getoption`.
"""

from __future__ import annotations

import fnmatch
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ftbench.config.build import GatePolicy, data_source, gate_policy
from ftbench.config.jobfile import is_job_file, listed_in_pyproject, load_job_file
from ftbench.config.options import overrides_from
from ftbench.config.profiles import (
    Profile,
    apply_overrides,
    check_job,
    default_profile_name,
    get_profile,
    profile_names,
)
from ftbench.core.errors import ConfigError

if TYPE_CHECKING:
    from ftbench.stack.data import DataSource


class Settings:
    def __init__(self, config: pytest.Config) -> None:
        self.option = config.getoption
        self.rootdir = Path(config.rootpath)
        name = self.option("ftb_profile")
        if name != "auto" and name not in profile_names():
            raise pytest.UsageError(
                f"--ftb-profile: unknown profile {name!r}; choose from "
                f"{', '.join(profile_names())}, auto"
            )
        self._job_files: dict[Path, Profile] = {}  # the user's, as collected
        self._policies: dict[str, GatePolicy] = {}  # by profile name

    @cached_property
    def profile(self) -> Profile:
        """The built-in profile `--ftb-profile` names, with the options' overrides."""
        name = self.option("ftb_profile")
        try:
            profile = get_profile(default_profile_name() if name == "auto" else name)
        except ConfigError as exc:
            raise pytest.UsageError(f"ftbench: {exc}") from None
        return self._overridden(profile)

    def _overridden(self, profile: Profile) -> Profile:
        overrides = {**overrides_from(self.option), "jobs": None}  # --ftb-job: check_jobs
        try:
            changed = apply_overrides(profile, **overrides)
            for job in changed.jobs:
                check_job(job)
        except ConfigError as exc:
            raise pytest.UsageError(f"ftbench: {exc}") from None
        return changed

    # -- the user's job files ------------------------------------------------------------------

    @cached_property
    def listed_jobs(self) -> list[str]:
        """Globs of job files from `--ftb-jobs` and pyproject.toml's [tool.ftbench] jobs."""
        try:
            listed = listed_in_pyproject(self.rootdir)
        except ConfigError as exc:
            raise pytest.UsageError(f"ftbench: {exc}") from None
        return [*(self.option("ftb_jobs") or ()), *listed]

    def is_job_file(self, path: Path, given: bool = False) -> bool:
        """A file pytest should collect as jobs: named ftbench*.yaml, listed, or a YAML file
        named on the command line (`given`)."""
        if path.suffix not in (".yaml", ".yml"):
            return False
        if given or is_job_file(path):
            return True
        try:
            relative = path.resolve().relative_to(self.rootdir.resolve()).as_posix()
        except ValueError:
            relative = str(path)
        return any(fnmatch.fnmatch(relative, glob) for glob in self.listed_jobs)

    def job_file(self, path: Path) -> Profile:
        """A job file's jobs, with the options' overrides; ConfigError if the file is bad."""
        if path not in self._job_files:
            profile = load_job_file(path)
            for other_path, other in self._job_files.items():
                if other.name == profile.name:
                    raise ConfigError(
                        f"{path}: profile {profile.name!r} is also {other_path}'s; baselines "
                        "are kept per profile, so give one of them its own `profile:`"
                    )
            for job in profile.jobs:
                for other_path, other in self._job_files.items():
                    if job.name in other.job_names():
                        raise ConfigError(
                            f"{path}: job {job.name!r} is also defined in {other_path}; case "
                            "ids and baselines are named by the job, so names must differ"
                        )
            try:
                self._job_files[path] = self._overridden(profile)
            except pytest.UsageError as exc:
                raise ConfigError(str(exc).removeprefix("ftbench: ")) from None
        return self._job_files[path]

    @property
    def job_files(self) -> dict[Path, Profile]:
        return dict(self._job_files)

    def profile_of(self, file: str | None) -> Profile:
        """The profile a test's job comes from: its job file's, or the built-in profile's."""
        return self.job_file(Path(file)) if file else self.profile

    def check_jobs(self) -> None:
        """`--ftb-job` names jobs the run has: of the built-in profile or a job file."""
        wanted = self.option("ftb_job") or ()
        known = {job.name for name in profile_names() for job in get_profile(name).jobs}
        known |= {job.name for p in self._job_files.values() for job in p.jobs}
        unknown = [j for j in wanted if j not in known]
        if unknown:
            raise pytest.UsageError(
                f"--ftb-job: unknown job(s) {unknown}; choose from {sorted(known)}"
            )

    def selected(self, job_name: str) -> bool:
        wanted = self.option("ftb_job")
        return not wanted or job_name in wanted

    @cached_property
    def source(self) -> DataSource:
        return data_source(self.option)

    def policy_for(self, profile: str) -> GatePolicy:
        """The gates' policy for a case of this profile (its tolerances, with the options');
        validates the tolerance options too (an unknown metric is a ConfigError)."""
        if profile not in self._policies:
            self._policies[profile] = gate_policy(self.option, self._profile_named(profile))
        return self._policies[profile]

    def _profile_named(self, name: str) -> Profile:
        for profile in self._job_files.values():
            if profile.name == name:
                return profile
        return self.profile

    def profiles_in_use(self) -> list[Profile]:
        """The built-in profile, if a test of bench/ asked for it, and the job files'."""
        used = [self.__dict__["profile"]] if "profile" in self.__dict__ else []
        return [*used, *self._job_files.values()]

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

    @property
    def in_process(self) -> bool:
        """--ftb-in-process: time every case here, not each gated one in a fresh process."""
        return bool(self.option("ftb_in_process"))

    def get(self, dest: str) -> Any:
        """An option by its dest, for what passes options on (a launched case's data)."""
        return self.option(dest)
