"""Shared helpers of the API tests: a synthetic store with one published model, and apps over it.

A *template* (store + first model) is built once per process and copied for every world, so a
test that mutates its world (events, recomputes) never disturbs another one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from tribes.config import Settings
from tribes.events import parse_ts
from tribes.ingest import ingest_objects
from tribes.recompute import recompute
from tribes.service import SuggestionService
from tribes.store import Store
from tribes.synth import SynthConfig, generate

N_USERS = 360
SEED = 21

_templates: dict[tuple[int, int], Path] = {}

#: A time after every event of the synthetic worlds (they end at ``SynthConfig.end``) and before
#: the server's clock (ingest rejects later ones: ``TRIBES_MAX_FUTURE_SECONDS``): events posted
#: at it win "latest ts" over the stored ones.
LATER = int(parse_ts(SynthConfig().end)) + 86_400


def _template(factory: pytest.TempPathFactory, n_users: int = N_USERS, seed: int = SEED) -> Path:
    key = (n_users, seed)
    if key not in _templates:
        root = factory.mktemp(f"template-{n_users}-{seed}")
        with Store.open(f"sqlite:///{root / 'tribes.db'}") as store:
            report = ingest_objects(store, generate(SynthConfig(n_users=n_users, seed=seed)))
            assert report.committed, report.problems
            recompute(store, root / "models")
        _templates[key] = root
    return _templates[key]


def settings_for(root: Path, **overrides: Any) -> Settings:
    values = {
        "db": f"sqlite:///{root / 'tribes.db'}",
        "models": str(root / "models"),
        "model_check_seconds": 0,
        **overrides,
    }
    return Settings.load(values, environ={})


def make_app(root: Path, *, access_log: bool = False, **overrides: Any) -> Flask:
    """An app over the store and models of ``root`` (settings ``overrides`` on top)."""
    return create_app({"SETTINGS": settings_for(root, **overrides), "ACCESS_LOG": access_log})


@dataclass
class World:
    """A private copy of the template: its folder, an app over it and a test client."""

    root: Path
    app: Flask
    client: FlaskClient

    @property
    def db(self) -> str:
        return f"sqlite:///{self.root / 'tribes.db'}"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def service(self) -> SuggestionService:
        return self.app.extensions["tribes"]

    @property
    def store(self) -> Store:
        return self.service.store

    def recompute(self, params: dict | None = None) -> str:
        name, _ = recompute(self.store, self.models, params)
        return name

    def close(self) -> None:
        self.store.close()


def make_world(
    factory: pytest.TempPathFactory,
    name: str = "world",
    *,
    access_log: bool = False,
    **overrides: Any,
) -> World:
    """Copy the template to a fresh folder and start an app over the copy."""
    root = factory.mktemp(name)
    shutil.copytree(_template(factory), root, dirs_exist_ok=True)
    app = make_app(root, access_log=access_log, **overrides)
    return World(root, app, app.test_client())


def empty_root(factory: pytest.TempPathFactory, name: str = "empty") -> Path:
    """A folder with a migrated, empty store and no models published."""
    root = factory.mktemp(name)
    Store.open(f"sqlite:///{root / 'tribes.db'}").close()
    return root
