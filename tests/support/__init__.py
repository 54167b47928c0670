"""Test helpers shared by unit and integration tests (importable as ``support`` under pytest,
whose rootdir conftest puts ``tests/`` on sys.path)."""
