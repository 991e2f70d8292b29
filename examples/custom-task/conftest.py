"""Registers the KTO task before pytest reads the job file that names it (ftbench's hook)."""


def pytest_ftbench_register_tasks(register):
    from kto import Kto  # this folder is on sys.path: pytest puts a conftest's folder there

    register(Kto)
