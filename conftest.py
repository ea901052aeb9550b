"""Root conftest: shared by loadtests/ (the gate) and tests/ (loadgate's own tests)."""
