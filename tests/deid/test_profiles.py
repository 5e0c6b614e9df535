"""Profiles load through one set of checks; one letting a direct identifier out is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medspace.deid.profiles import (
    BUILT_IN,
    DIRECT_IDENTIFIERS,
    REMOVING_ACTIONS,
    ProfileError,
    load_profile,
    parse_profile,
)


def _profile(**overrides: dict[str, object] | None) -> str:
    fields: dict[str, object] = {field: {"action": "drop"} for field in DIRECT_IDENTIFIERS}
    for field, rule in overrides.items():
        if rule is None:
            fields.pop(field)
        else:
            fields[field] = rule
    return yaml.safe_dump({"name": "custom", "fields": fields}, allow_unicode=True)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_profile_removes_every_direct_identifier(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert all(profile.fields[f].action in REMOVING_ACTIONS for f in DIRECT_IDENTIFIERS)


def test_safe_harbor_keeps_years_and_tops_ages_at_90() -> None:
    profile = load_profile("hipaa-safe-harbor")
    assert profile.fields["birth_date"].to == "year"
    assert (profile.fields["age"].ceiling, profile.fields["age"].label) == (89, "90+")
    assert profile.fields["zip"].to == "zip3"


def test_a_profile_keeping_a_direct_identifier_is_refused_naming_the_field() -> None:
    with pytest.raises(ProfileError, match="id_number: a direct identifier would leave by 'keep'"):
        parse_profile(_profile(id_number={"action": "keep"}), "custom.yaml")


def test_a_profile_generalising_a_direct_identifier_is_refused() -> None:
    with pytest.raises(ProfileError, match="address: a direct identifier would leave by"):
        parse_profile(_profile(address={"action": "generalise", "to": "city"}), "custom.yaml")


def test_a_profile_silent_about_a_direct_identifier_is_refused() -> None:
    with pytest.raises(ProfileError, match="phone: a direct identifier the profile does not"):
        parse_profile(_profile(phone=None), "custom.yaml")


def test_a_profile_keeping_free_text_notes_is_refused() -> None:
    with pytest.raises(ProfileError, match="notes: free text would leave by 'keep'"):
        parse_profile(_profile(notes={"action": "keep"}), "custom.yaml")


def test_an_unknown_action_or_key_is_refused_with_its_place() -> None:
    with pytest.raises(ProfileError, match=r"custom\.yaml: fields\.name\.action"):
        parse_profile(_profile(name={"action": "blur"}), "custom.yaml")
    with pytest.raises(ProfileError, match=r"fields\.name\.colour"):
        parse_profile(_profile(name={"action": "drop", "colour": "red"}), "custom.yaml")


def test_a_generalisation_without_its_level_is_refused() -> None:
    text = _profile(birth_date={"action": "generalise"})
    with pytest.raises(ProfileError, match="birth_date: 'generalise' needs 'to'"):
        parse_profile(text, "custom.yaml")


def test_a_field_a_profile_does_not_name_is_dropped() -> None:
    profile = parse_profile(_profile(), "custom.yaml")
    assert profile.rule("diagnosis_note").action == "drop"


def test_a_hospitals_profile_file_loads_and_a_missing_one_names_the_built_ins(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ours.yaml"
    path.write_text(_profile(birth_date={"action": "generalise", "to": "5-year"}),
                    encoding="utf-8")
    assert load_profile(path).fields["birth_date"].to == "5-year"
    with pytest.raises(ProfileError, match="hipaa-safe-harbor"):
        load_profile(tmp_path / "missing.yaml")


def test_text_that_is_not_yaml_is_refused() -> None:
    with pytest.raises(ProfileError, match="not YAML"):
        parse_profile("fields: [unclosed", "broken.yaml")
