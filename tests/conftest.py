"""Fixtures for loadgate's own tests."""

import shutil

import pytest


@pytest.fixture
def need_binary():
    def _need(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.fail(f"{name} is required for this test (make setup installs it)")
        return path

    return _need
