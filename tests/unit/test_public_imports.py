"""The publisher library's documented import paths (README, "The publisher library") stay
the library's own objects, wherever inside stockflow they live."""

from __future__ import annotations

import stockflow.adapters.publisher as inside
import stockflow.adapters.settings as inside_settings
import stockflow.publisher as public
import stockflow.settings as public_settings


def test_the_publisher_import_path_names_the_library_itself() -> None:
    for name in public.__all__:
        assert getattr(public, name) is getattr(inside, name)
    assert set(public.__all__) == set(inside.__all__)


def test_the_settings_import_path_names_the_settings_themselves() -> None:
    assert public_settings.Settings is inside_settings.Settings
