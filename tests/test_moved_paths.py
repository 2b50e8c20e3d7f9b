"""The module paths of before the folders still import, as the very module that moved."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from seeding._moved import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_is_the_moved_module(old: str, new: str) -> None:
    module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__name__ == new
    assert module.__spec__ is not None and module.__spec__.name == new


def test_an_old_path_loaded_first_in_a_fresh_interpreter() -> None:
    """What a user's old code does: import the old path before anything else."""
    code = (
        "from seeding.database import mask_password\n"
        "from seeding.plan import make_plan\n"
        "import seeding.testserver, seeding.db.database, seeding.testing.server\n"
        "import seeding\n"
        "assert seeding.testserver is seeding.testing.server\n"
        "assert mask_password is seeding.db.database.mask_password\n"
        "assert make_plan.__module__ == 'seeding.scenario.plan'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


def test_a_path_that_never_was_is_still_missing() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("seeding.no_such_module")


def test_every_moved_path_points_at_a_real_module_and_no_file_is_left_behind() -> None:
    root = Path(importlib.import_module("seeding").__file__ or "").parent
    for old, new in MOVED.items():
        assert importlib.util.find_spec(new) is not None, new
        assert not (root / f"{old.rpartition('.')[2]}.py").exists(), old


#: Names that moved to a new module of the same package this round: (old module, new module).
MOVED_NAMES = {
    ("seeding.scenario.plan", "seeding.scenario.steps"): (
        "FACTORIES", "RELATIONS", "VOCABULARY", "RANGES", "PARAM_TYPES", "INTERNAL_PARAMS",
        "ALIASES", "DERIVED_FILTERS", "EARLIEST", "LATEST", "factory_names", "model_columns",
        "column_value",
    ),
    ("seeding.report.build", "seeding.report.metrics"): (
        "METRIC_COLUMNS", "OPTIONAL_COLUMNS", "MECHANIC_PROFILE_FIELDS",
        "SQL_MECHANIC_COMPLETE", "CUSTOMER_GEO_COLUMNS", "unavailable_metrics",
    ),
    ("seeding.db.catalog", "seeding.db.checks"): ("allowed_values",),
    ("seeding.testing.server", "seeding.testing.templates"): (
        "TemplateKey", "template_key", "schema_files", "apply_schema",
    ),
    ("seeding.testing.server", "seeding.testing.databases"): ("ScenarioDatabase",),
    ("seeding.doctor", "seeding.doctor.check"): (
        "diagnose", "apply_fixes", "check_database", "problems_in", "notes_in", "Diagnosis",
    ),
}


@pytest.mark.parametrize(("modules", "names"), sorted(MOVED_NAMES.items()))
def test_a_name_moved_to_a_new_module_still_imports_from_its_old_one(
    modules: tuple[str, str], names: tuple[str, ...]
) -> None:
    old, new = (importlib.import_module(module) for module in modules)
    for name in names:
        assert getattr(old, name) is getattr(new, name), f"{modules[0]}.{name}"
