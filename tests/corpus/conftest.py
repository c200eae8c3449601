"""Session fixtures of the corpus: where clean files live, and one store per app that has a champion."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.corpus.harness import seed_store, set_cache_dir


@pytest.fixture(scope="session", autouse=True)
def corpus_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus_clean")
    set_cache_dir(folder)
    return folder


class SeededStores:
    """A store per app with a champion from a clean run, made the first time a case needs it."""

    def __init__(self, root: Path):
        self.root = root
        self.stores: dict[str, Path] = {}

    def __getitem__(self, app: str) -> Path:
        if app not in self.stores:
            store = self.root / app / "store"
            seed_store(app, store, self.root / app / "out")
            self.stores[app] = store
        return self.stores[app]


@pytest.fixture(scope="session")
def seeded(tmp_path_factory, corpus_files) -> SeededStores:
    return SeededStores(tmp_path_factory.mktemp("corpus_seeded"))
