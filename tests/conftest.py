"""pytest configuration: fixtures live in tests/fixtures/ by area."""

pytest_plugins = [
    "tests.fixtures.core",
    "tests.fixtures.llamacpp",
    "tests.fixtures.hf",
    "tests.fixtures.openai",
]
