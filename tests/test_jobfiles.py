"""Job files: a team's recipes in YAML, collected by `pytest` in their own repository.

Every bad input is one line naming the file and line, before anything trains; a good file
trains, records, records baselines and is gated like the built-in jobs; a task of one's own
(the KTO example) runs with no change to ftbench.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import datasets  # noqa: F401  (see test_plugin.py: imported before any pytester run)
import pytest
import transformers
from conftest import make_pairs

from ftbench.config.jobfile import builtin_profiles, fields_markdown, load_job_file
from ftbench.config.profiles import get_profile
from ftbench.core.errors import ConfigError, DataError
from ftbench.core.record import CaseResult

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom-task"

GOOD = """\
name: pairs
task: mrpc
checkpoint: {checkpoint}
data:
  train: train.csv
  validation: dev.csv
  columns: {{sentence1: first, sentence2: second, label: same}}
paddings: [dynamic]
max_length: 64
trainer:
  max_steps: 6
  per_device_train_batch_size: 8
  learning_rate: {lr}
  lr_scheduler_type: cosine
  gradient_accumulation_steps: 2
floors: {{eval_accuracy: 0.0}}
"""


def _job(tmp_path: Path, text: str, name: str = "ftbench.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_job_file(_job(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message  # one line
    return message


def _write_pairs(directory: Path, train: int = 48, dev: int = 24) -> None:
    """Sentence pairs as a team keeps them: CSV with its own column names."""
    for name, rows in (("train.csv", make_pairs(train, 1)), ("dev.csv", make_pairs(dev, 2))):
        with (directory / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["first", "second", "same"])
            writer.writerows((a, b, label) for label, a, b in rows)


# -- the built-in profiles are job files -----------------------------------------------------------


def test_the_built_in_profiles_are_shipped_job_files() -> None:
    assert set(builtin_profiles()) == {"smoke", "full"}
    smoke = get_profile("smoke")
    assert smoke.origin.endswith("config/jobs/smoke.yaml")
    assert [j.name for j in smoke.jobs] == [
        "finetune", "throughput", "sft", "dpo", "reward", "cpo", "orpo", "grpo",
        "invariants-mrpc", "invariants-sft",
    ]  # fmt: skip
    assert smoke.job("invariants-sft").invariants == ("grad-accum", "padding")
    sft = smoke.job("sft")
    assert (sft.max_length, sft.training.max_steps, sft.training.batch_size) == (384, 16, 4)
    assert sft.floors == {"eval_loss": 1.25, "eval_mean_token_accuracy": 0.70}
    assert smoke.job("dpo").training.learning_rate == 1e-5  # a merge key's override
    assert smoke.job("finetune").lora.floors == {"eval_accuracy": 0.74, "eval_f1": 0.82}
    assert get_profile("full").job("grpo").training.num_generations == 8
    assert all(":" in job.origin for job in smoke.jobs)  # file and line


def test_a_job_file_maps_trainer_fields_and_passes_the_rest_through(tmp_path: Path) -> None:
    profile = load_job_file(_job(tmp_path, GOOD.format(checkpoint="minilm-l6", lr=1e-4)))
    [job] = profile.jobs
    assert profile.name == "ftbench"  # the file's name
    assert (job.name, job.task, job.checkpoints, job.paddings) == (
        "pairs", "mrpc", ("minilm-l6",), ("dynamic",),
    )  # fmt: skip
    assert (job.training.max_steps, job.training.batch_size) == (6, 8)
    assert job.training.trainer_args == {
        "lr_scheduler_type": "cosine",
        "gradient_accumulation_steps": 2,
    }
    assert job.gates == ("eval_accuracy", "eval_f1", "peak_memory_bytes")  # the task's default
    assert job.data.text_columns == ("first", "second")
    assert job.data.label_column == "same"
    assert job.data.train_file == str(tmp_path / "train.csv")  # relative to the file


def test_the_trainer_config_receives_the_passed_through_fields(tmp_path: Path) -> None:
    from ftbench.config.build import case_spec
    from ftbench.measure.runner import training_arguments

    profile = load_job_file(_job(tmp_path, GOOD.format(checkpoint="minilm-l6", lr=1e-4)))
    spec = case_spec(profile.jobs[0], profile, checkpoint="minilm-l6", padding="dynamic")
    args = training_arguments(spec, str(tmp_path / "out"), train_size=48)
    assert args.gradient_accumulation_steps == 2
    assert args.lr_scheduler_type.value == "cosine"
    assert spec.recipe["trainer_args"]["gradient_accumulation_steps"] == 2  # in the record


# -- bad input: one line each, naming file and line -----------------------------------------------


def test_a_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "task: mrpc\ncheckpoint: [minilm-l6\ntrainer: {}\n")
    assert "ftbench.yaml:3" in message
    assert "not valid YAML" in message


def test_an_unknown_key_names_the_nearest(tmp_path: Path) -> None:
    message = _error(tmp_path, "task: mrpc\ncheckpoint: minilm-l6\npadings: [dynamic]\n")
    assert "ftbench.yaml:3" in message
    assert "unknown key 'padings'" in message
    assert "did you mean paddings" in message


def test_an_unknown_trainer_field_names_class_version_and_nearest(tmp_path: Path) -> None:
    text = "task: mrpc\ncheckpoint: minilm-l6\ntrainer:\n  max_steps: 4\n  lerning_rate: 1\n"
    message = _error(tmp_path, text)
    assert "ftbench.yaml:5" in message
    assert "unknown trainer field 'lerning_rate'" in message
    assert (
        f"transformers.training_args.TrainingArguments (transformers {transformers.__version__})"
        in message
    )
    assert "did you mean learning_rate" in message


def test_a_trl_config_field_is_checked_against_the_trl_class(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    ok = "task: dpo\ncheckpoint: smollm2-135m\ntrainer: {beta: 0.2, loss_type: [sigmoid]}\n"
    assert load_job_file(_job(tmp_path, ok)).jobs[0].training.trainer_args["beta"] == 0.2
    message = _error(tmp_path, "task: dpo\ncheckpoint: smollm2-135m\ntrainer: {betta: 0.2}\n")
    assert "DPOConfig (trl " in message
    assert "did you mean beta" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trainer: {num_train_epochs: three}", "`num_train_epochs` must be a number, not str"),
        ("trainer: {lr_scheduler_type: 5}", "trainer.lr_scheduler_type must be a string, not int"),
        ("paddings: dynamic-x9", "unknown value 'dynamic-x9'; choose from static"),
        ("floors: {eval_accuracy: high}", "`eval_accuracy` must be a number, not str"),
        ("trainer: {bf16: true}", "trainer.bf16 is set by ftbench: use the `precisions` axis"),
        ("gates: [eval_acuracy]", "task mrpc does not report 'eval_acuracy'; did you mean"),
        ("floors: {eval_loss_x: 1}", "a floor on 'eval_loss_x', which task mrpc does not report"),
        (
            "data: {train: a.csv, validation: b.csv, columns: {prompt: q}}",
            "task mrpc reads no column 'prompt'",
        ),
        ("data: {train: a.csv}", "data needs both train and validation files"),
        ("tolerances: {eval_acc: {k: 2}}", "unknown metric 'eval_acc' in a tolerance"),
        ("tolerances: {eval_accuracy: 0.02}", "`eval_accuracy` must be a mapping, not float"),
        ("tolerances: {eval_accuracy: {k: two}}", "`k` must be a number, not str"),
        ("methods: []", "`methods` lists nothing"),
        ("processes: []", "`processes` lists nothing"),
        ("floors: {1: 0.5}", "a floor on 1, which task mrpc does not report"),
        ("trainer: {use_liger_kernel: 1}", "trainer.use_liger_kernel must be a boolean, not int"),
    ],
)
def test_bad_values_are_one_line_each(tmp_path: Path, text: str, expected: str) -> None:
    message = _error(tmp_path, f"task: mrpc\ncheckpoint: minilm-l6\n{text}\n")
    assert expected in message, message
    assert "ftbench.yaml:" in message


def test_yaml_s_pitfalls_and_anchors_are_taken_as_meant(tmp_path: Path) -> None:
    text = (
        "x-shared: &shared {max_steps: 4}\n"
        "task: mrpc\ncheckpoint: minilm-l6\n"
        "trainer: {<<: *shared, learning_rate: 1e-5, logging_steps: 0.1, x-note: ignored}\n"
        "evaluation: {eval_samples: 8, x-why: ignored too}\n"
    )
    [job] = load_job_file(_job(tmp_path, text)).jobs
    assert job.training.learning_rate == 1e-5  # YAML 1.1 reads `1e-5` as text
    assert job.training.max_steps == 4
    assert job.training.trainer_args == {"logging_steps": 0.1}  # an int default, a float field
    assert job.training.eval_samples == 8


def test_a_job_s_preference_data_is_read_under_the_run_s_data_dir(tmp_path: Path) -> None:
    from ftbench.plugin.parts import Parts
    from ftbench.stack.data import DataSource

    [job] = load_job_file(_job(tmp_path, "task: dpo\ncheckpoint: x\n"
                                         "data: {preference_data: hh-rlhf}\n")).jobs  # fmt: skip
    parts = Parts(DataSource(data_dir="/shared/data"))
    assert parts.complete(job.data) == DataSource(
        data_dir="/shared/data", preference_data="hh-rlhf"
    )
    assert parts.complete(None) is parts.source


def test_an_unknown_task_lists_the_known_ones(tmp_path: Path) -> None:
    message = _error(tmp_path, "task: kto2\ncheckpoint: minilm-l6\n")
    assert "ftbench.yaml:1" in message
    assert "unknown task 'kto2'" in message
    assert "mrpc, sft, dpo" in message


def test_two_jobs_with_one_name(tmp_path: Path) -> None:
    text = "jobs:\n  - {task: mrpc, checkpoint: a}\n  - {task: mrpc, checkpoint: b}\n"
    message = _error(tmp_path, text)
    assert "ftbench.yaml:3" in message
    assert "two jobs are named 'mrpc' (the other at line 2)" in message


# -- pytest in the user's repository --------------------------------------------------------------


@pytest.fixture
def repo(pytester: pytest.Pytester, tiny_checkpoint: Path) -> pytest.Pytester:
    """A team's repository: a job file and its own CSV pairs; no bench/, no conftest."""
    _write_pairs(pytester.path)
    _job(pytester.path, GOOD.format(checkpoint=tiny_checkpoint, lr=1e-4))
    return pytester


def _run(repo: pytest.Pytester, *args: str) -> pytest.RunResult:
    return repo.runpytest_inprocess("-p", "no:cacheprovider", "-rs", *args)


def test_pytest_collects_the_job_file_with_case_ids(repo: pytest.Pytester) -> None:
    result = _run(repo, "--collect-only", "-q")
    result.stdout.fnmatch_lines(["ftbench.yaml::pairs[[]tiny-bert-dynamic-cpu-fp32-full[]]"])
    selected = _run(repo, "--collect-only", "-q", "-k", "static")
    assert "no tests collected" in selected.stdout.str() or "deselected" in selected.stdout.str()


def test_a_job_file_trains_records_baselines_and_gates(
    repo: pytest.Pytester, tiny_checkpoint: Path
) -> None:
    first = _run(repo, "--ftb-update-baselines")
    first.assert_outcomes(passed=1)
    [baseline] = (repo.path / "results" / "baselines").glob("*/ftbench.json")
    entry = json.loads(baseline.read_text())["cases"]["pairs[tiny-bert-dynamic-cpu-fp32-full]"]
    assert entry["recipe"]["trainer_args"] == {
        "lr_scheduler_type": "cosine",
        "gradient_accumulation_steps": 2,
    }
    assert entry["data"]["files"]  # the team's own files, by sha256
    again = _run(repo)
    again.assert_outcomes(passed=1)
    assert "within bounds" in again.stdout.str()
    [record] = sorted((repo.path / "results" / "runs").glob("*/*.json"))[-1:]
    assert json.loads(record.read_text())["profile"] == "ftbench"
    # a changed recipe (learning rate x 100) is another experiment, not judged by the baseline
    _job(repo.path, GOOD.format(checkpoint=tiny_checkpoint, lr=1e-2))
    changed = _run(repo, "--ftb-require-baseline")
    changed.assert_outcomes(failed=1)
    assert "another recipe: learning_rate 0.01 (baseline 0.0001)" in changed.stdout.str()


def _baseline_ten_times_faster(repo: pytest.Pytester, *args: str) -> None:
    """Record the job's baseline, then make its rates 10x this machine's."""
    _run(repo, *args, "--ftb-update-baselines").assert_outcomes(passed=1)
    [path] = (repo.path / "results" / "baselines").glob("*/ftbench.json")
    stored = json.loads(path.read_text())
    for entry in stored["cases"].values():
        for name in ("train_samples_per_second", "train_samples_per_probe"):
            figures = entry["metrics"][name]
            figures.update({k: figures[k] * 10 for k in ("mean", "median")})
            figures["values"] = [v * 10 for v in figures["values"]]
    path.write_text(json.dumps(stored))


def _run_records(repo: pytest.Pytester) -> list[dict]:
    """The newest run's records, oldest first."""
    records = sorted(
        (json.loads(p.read_text()) for p in (repo.path / "results" / "runs").glob("*/*.json")),
        key=lambda r: r["created_at"],
    )
    return [r for r in records if r["run_id"] == records[-1]["run_id"]]


@pytest.mark.parametrize("where", ["a fresh process", "pytest's process"])
def test_a_re_measure_times_again_and_keeps_the_first_quality(
    repo: pytest.Pytester, tiny_checkpoint: Path, where: str
) -> None:
    """A throughput miss is measured once more before it fails. The re-measure trains as the
    first did (where the first did, after the same untrained evaluation) and stops: evaluating
    the same seed's model again would take minutes a case on a CPU and judge nothing new."""
    gated = GOOD.format(checkpoint=tiny_checkpoint, lr=1e-4)
    _job(repo.path, gated + "evaluation: {evaluate_untrained: true}\n"
         "gates: [eval_accuracy, train_samples_per_second]\n")  # fmt: skip
    here = ["--ftb-in-process"] if where == "pytest's process" else []
    _baseline_ten_times_faster(repo, *here)
    slow = _run(repo, *here)
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*re-measuring once before failing*"])
    # this run's first measurement and its last (a busy one waits for quiet and measures again)
    first, *_, again = _run_records(repo)
    assert first["machine"]["timed_in"] == again["machine"]["timed_in"] == where
    assert first["times"]["eval_seconds"] > 0
    assert again["times"]["eval_seconds"] == 0
    assert again["metrics"]["eval_accuracy"] == first["metrics"]["eval_accuracy"] is not None
    assert again["metrics"]["untrained_eval_accuracy"] is not None  # evaluated before, as first
    assert again["memory"] == first["memory"]  # on CUDA the peak counts the evaluation
    note = "re-measure: trained and timed again; quality and peak memory are the first's"
    assert note in again["notes"]


def test_a_busy_re_measure_waits_for_quiet_and_is_measured_again(
    repo: pytest.Pytester, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A throughput miss whose re-measure lands on a busy device does not pass unjudged: the
    case waits for quiet, as a first measurement does, and judges the measurement after."""
    _job(repo.path, GOOD.format(checkpoint=tiny_checkpoint, lr=1e-4)
         + "gates: [eval_accuracy, train_samples_per_second]\n")  # fmt: skip
    _baseline_ten_times_faster(repo, "--ftb-in-process")
    planted: list[object] = []  # the re-measure, the only measurement made to look busy

    def busy(result: CaseResult) -> bool:
        if not planted and any(n.startswith("re-measure:") for n in result.notes):
            planted.append(result)
        return any(result is r for r in planted)

    for module in ("plugin.case", "judge.verdict", "judge.throughput"):
        monkeypatch.setattr(f"ftbench.{module}.is_busy", busy)
    # and quiet at once: a neighbour on this host must not turn the wait into the outcome
    monkeypatch.setattr("ftbench.plugin.case.wait_until_idle", lambda device, limit: None)
    slow = _run(repo, "--ftb-in-process", "--ftb-busy-wait=30")
    slow.assert_outcomes(failed=1)
    slow.stdout.fnmatch_lines(["*re-measuring once before failing*", "*REGRESSED*"])
    assert "not gated" not in slow.stdout.str()
    first, busy_again, judged = _run_records(repo)
    assert len(planted) == 1
    assert first["metrics"]["eval_accuracy"] is not None
    assert busy_again["times"]["eval_seconds"] == judged["times"]["eval_seconds"] == 0


def test_a_missing_column_stops_the_run_before_training(repo: pytest.Pytester) -> None:
    text = (repo.path / "ftbench.yaml").read_text().replace("label: same", "label: is_same")
    _job(repo.path, text)
    result = _run(repo)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*train.csv*missing*is_same*"])
    assert not (repo.path / "results" / "runs").exists()


def test_a_bad_job_file_is_one_collection_error(repo: pytest.Pytester) -> None:
    _job(repo.path, "task: mrpc\ncheckpoint: x\ntrainer: {lerning_rate: 1}\n", "ftbench-b.yaml")
    result = _run(repo)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ftbench-b.yaml:3: job 'mrpc': unknown trainer field*"])
    assert "Traceback" not in result.stdout.str()
    assert not list((repo.path / "results").rglob("*.json"))  # nothing trained or recorded


def test_one_job_name_in_two_files_is_refused(repo: pytest.Pytester) -> None:
    text = (repo.path / "ftbench.yaml").read_text()
    _job(repo.path, text, "ftbench-copy.yaml")
    result = _run(repo, "--collect-only")
    result.stdout.fnmatch_lines(["*job 'pairs' is also defined in*ftbench*.yaml*"])


def test_two_files_with_one_profile_name_are_refused(repo: pytest.Pytester) -> None:
    (repo.path / "sub").mkdir()
    _job(repo.path / "sub", "name: other\ntask: mrpc\ncheckpoint: x\n")
    result = _run(repo, "--collect-only")
    result.stdout.fnmatch_lines(["*profile 'ftbench' is also*ftbench.yaml's*own `profile:`*"])


def test_files_listed_in_pyproject_or_options_are_collected(repo: pytest.Pytester) -> None:
    recipes = repo.path / "recipes"
    recipes.mkdir()
    (repo.path / "ftbench.yaml").rename(recipes / "pairs.yaml")
    assert "no tests collected" in _run(repo, "--collect-only", "-q").stdout.str()
    via_option = _run(repo, "--collect-only", "-q", "--ftb-jobs", "recipes/*.yaml")
    via_option.stdout.fnmatch_lines(["recipes/pairs.yaml::pairs*"])
    (repo.path / "pyproject.toml").write_text('[tool.ftbench]\njobs = ["recipes/*.yaml"]\n')
    _run(repo, "--collect-only", "-q").stdout.fnmatch_lines(["recipes/pairs.yaml::pairs*"])


def test_a_task_whose_package_is_missing_skips_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ftbench.tasks import get_task

    monkeypatch.setattr(type(get_task("dpo")), "requires", ("no_such_package_xyz",))
    profile = load_job_file(_job(tmp_path, "task: dpo\ncheckpoint: x\ntrainer: {beta: 0.2}\n"))
    assert profile.jobs[0].training.trainer_args == {"beta": 0.2}  # not checked: no class here
    assert "pip install 'trl>=1.16,<2'" in get_task("dpo").problem()


# -- the command line ------------------------------------------------------------------------------


def _ftbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`ftbench ARGS` in `cwd`, run in this process: a fresh interpreter costs ~4 s a call
    (the custom task example below runs the command itself)."""
    from ftbench.cli import main

    out, err, here = io.StringIO(), io.StringIO(), Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_ftbench_jobs_lists_jobs_matrices_and_sources(tmp_path: Path) -> None:
    _job(tmp_path, GOOD.format(checkpoint="minilm-l6", lr=1e-4))
    (tmp_path / "sub").mkdir()
    _job(tmp_path / "sub", "jobs:\n  - {task: mrpc, checkpoint: a, paddings: [static, dynamic]}\n",
         "ftbench-two.yaml")  # fmt: skip
    out = _ftbench("jobs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["job", "task", "cases", "profile"]
    assert lines[1].split()[:4] == ["pairs", "mrpc", "1", "ftbench"]
    assert lines[1].endswith("ftbench.yaml:1")
    assert lines[2].split()[:3] == ["mrpc", "mrpc", "2"]
    assert lines[2].endswith("ftbench-two.yaml:2")
    assert json.loads(_ftbench("jobs", "--json", cwd=tmp_path).stdout) == ["pairs", "mrpc"]
    empty = tmp_path / "empty"
    empty.mkdir()
    none = _ftbench("jobs", cwd=empty)
    assert none.returncode == 1
    assert "ftbench init" in none.stderr


def test_the_fields_page_is_generated_from_the_definitions() -> None:
    assert (ROOT / "docs" / "jobs.md").read_text().endswith(fields_markdown()), (
        "docs/jobs.md is stale: its reference ends with `ftbench jobs --fields`"
    )


def test_ftbench_init_writes_a_job_file_and_a_workflow(tmp_path: Path) -> None:
    out = _ftbench("init", str(tmp_path), "--task", "dpo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    job = load_job_file(tmp_path / "ftbench.yaml").jobs[0]
    assert (job.task, job.floors) == ("dpo", {"eval_reward_accuracy": 0.5})
    assert (tmp_path / ".github" / "workflows" / "ftbench.yml").is_file()
    again = _ftbench("init", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 2
    assert "nothing written" in again.stderr
    (tmp_path / ".github" / "workflows" / "ftbench.yml").unlink()
    mine = (tmp_path / "ftbench.yaml").read_text() + "# my changes\n"
    (tmp_path / "ftbench.yaml").write_text(mine)
    workflow_only = _ftbench("init", str(tmp_path), cwd=tmp_path)
    assert workflow_only.returncode == 0
    assert "kept" in workflow_only.stdout
    assert (tmp_path / "ftbench.yaml").read_text() == mine  # the user's file is kept
    assert (tmp_path / ".github" / "workflows" / "ftbench.yml").is_file()


# -- a task of one's own ---------------------------------------------------------------------------


def test_an_entry_point_task_is_found_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import ftbench.tasks as tasks
    from ftbench.tasks.mrpc import Mrpc

    class Renamed(Mrpc):
        name = "pairs-from-a-plugin"

    class Entry:
        value = "their_package:Renamed"

        def load(self) -> type:
            return Renamed

    monkeypatch.setattr(tasks, "_entry_points", lambda: {"pairs-from-a-plugin": Entry()})
    monkeypatch.setattr(tasks, "_REGISTERED", {})
    assert "pairs-from-a-plugin" in tasks.task_names()
    assert tasks.get_task("pairs-from-a-plugin").name == "pairs-from-a-plugin"
    with pytest.raises(ConfigError, match="built-in task's name"):
        tasks.register_task(type("Clash", (Mrpc,), {"name": "dpo"}))


def test_the_custom_task_example_runs_under_pytest(
    pytester: pytest.Pytester, tiny_llama: Path, chat_data: Path
) -> None:
    pytest.importorskip("trl")
    for name in ("kto.py", "conftest.py", "ftbench-kto.yaml"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs",
        f"--ftb-checkpoint={tiny_llama}", f"--ftb-data-dir={chat_data}",
        "--ftb-max-steps=4", "--ftb-batch-size=4", "--ftb-max-length=128",
        "--ftb-update-baselines",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*kto[[]tiny-llama-padded-cpu-fp32-full[]]*"])
    listed = subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "jobs"], cwd=pytester.path, capture_output=True,
        text=True,
    )  # fmt: skip
    assert listed.stdout.splitlines()[1].split()[:3] == ["kto", "kto", "1"], listed.stderr
    [record] = (pytester.path / "results" / "runs").glob("*/*.json")
    metrics = json.loads(record.read_text())["metrics"]
    assert metrics["untrained_eval_reward_margin"] == 0.0  # the policy is its own reference
    rerun = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider",
        f"--ftb-checkpoint={tiny_llama}", f"--ftb-data-dir={chat_data}",
        "--ftb-max-steps=4", "--ftb-batch-size=4", "--ftb-max-length=128",
    )  # fmt: skip
    rerun.assert_outcomes(passed=1)
    assert "within bounds" in rerun.stdout.str()
    report = subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "report", "results/runs", "--out", "report"],
        cwd=pytester.path, capture_output=True, text=True,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "kto[tiny-llama" in (pytester.path / "report" / "report.md").read_text()


def test_data_from_a_dataset_id_reads_its_splits_and_columns(tmp_path: Path) -> None:
    """`data.hub` goes through `datasets.load_dataset(id, config, split=...)`; a local dataset
    folder stands in for a Hub id here (no network in unit tests)."""
    from ftbench.stack.data import load_pairs

    dataset = tmp_path / "my-pairs"
    dataset.mkdir()
    _write_pairs(dataset)
    (dataset / "dev.csv").rename(dataset / "validation.csv")
    text = (
        f"task: mrpc\ncheckpoint: minilm-l6\n"
        f"data: {{hub: {dataset}, columns: {{sentence1: first, sentence2: second, label: same}}}}\n"
    )
    [job] = load_job_file(_job(tmp_path, text)).jobs
    assert job.data.hub_dataset == str(dataset)
    assert job.data.split_files() == {"train": "train", "validation": "validation"}
    pairs = load_pairs(job.data)
    assert (len(pairs["train"]), len(pairs["validation"])) == (48, 24)
    with pytest.raises(DataError, match=r"my-pairs\[train\].*verdict"):
        load_pairs(replace(job.data, label_column="verdict"))
