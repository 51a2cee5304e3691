"""Typed dependencies: the loaded model and the settings, both held on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from classifier.artifacts import LoadedModel
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_classifier(request: Request) -> LoadedModel:
    """The model loaded at startup."""
    loaded: LoadedModel = request.app.state.classifier
    return loaded


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClassifierDep = Annotated[LoadedModel, Depends(get_classifier)]
