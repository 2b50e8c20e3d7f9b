"""The public API is small and explicit."""

import factories
import seeding

SEEDING_API = {
    "ConfigurationError", "DatabaseError", "FactoryRuleError", "ScenarioError", "SchemaError",
    "SeedingError", "Target", "create_schema", "engine_for", "normalize_url", "resolve",
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
