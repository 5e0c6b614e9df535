"""De-identification profiles: which operator each field of a record-level output goes through.

A profile is a YAML document a hospital can read and extend::

    name: cn-health
    description: GB/T 37964-2019 applied to health data as GB/T 39725-2020 describes
    fields:
      name: {action: drop}
      phone: {action: mask}
      birth_date: {action: generalise, to: year}

Every field a record may carry is classed (``DIRECT_IDENTIFIERS``, ``QUASI_IDENTIFIERS``); a
profile must say what happens to every direct identifier, and may only remove, pseudonymise or
encrypt it — a profile that would let one through (``keep``, a generalisation, or silence) is
refused when it is loaded, with the field named. Free text (``FREE_TEXT``) leaves scrubbed or
not at all. The three built-in profiles live beside this
module (``profiles/*.yaml``) and load through the same checks as a hospital's own.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: Fields that name a person on their own (HIPAA's list as it applies to these records, and
#: GB/T 39725-2020's direct identifiers).
DIRECT_IDENTIFIERS: tuple[str, ...] = (
    "name", "id_number", "phone", "address", "mrn", "insurance_number", "email", "url", "ip",
    "device_id", "photo",
)  # fmt: skip
#: Fields that identify in combination: generalised rather than removed, to keep their value.
QUASI_IDENTIFIERS: tuple[str, ...] = (
    "birth_date", "age", "sex", "zip", "region", "admission_date", "discharge_date",
    "death_date", "occupation", "ethnicity",
)  # fmt: skip
#: Fields of free text (clinical notes, report conclusions): they name people in passing, so
#: they may only leave scrubbed of every identifier :mod:`medspace.deid.text` finds, or not at all.
FREE_TEXT: tuple[str, ...] = ("notes",)
FREE_TEXT_ACTIONS = frozenset({"drop", "suppress", "scrub"})
#: What may happen to a direct identifier: it leaves removed, as a keyed pseudonym (reversible
#: only with the hospital's key when encrypted), or masked down to a few digits.
REMOVING_ACTIONS = frozenset({"drop", "suppress", "pseudonym", "encrypt", "mask"})

Action = Literal[
    "keep", "drop", "suppress", "mask", "pseudonym", "encrypt", "generalise", "shift", "top_code",
    "scrub",
]  # fmt: skip
BUILT_IN = ("hipaa-safe-harbor", "cn-health", "gdpr-pseudonymisation")


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the profile and the field."""


class Rule(BaseModel):
    """What one field goes through, with the operator's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    to: str | None = None
    """For ``generalise``: ``month``, ``year``, ``5-year``, ``3-characters``, ``city``,
    ``province``, ``zip3`` or a band width such as ``5``."""
    ceiling: float | None = None
    """For ``top_code``: values above it become ``label``."""
    label: str | None = None
    keep_start: int | None = Field(default=None, ge=0)
    keep_end: int | None = Field(default=None, ge=0)


class Profile(BaseModel):
    """A named set of rules, one per field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    description: str = ""
    reference: str = ""
    """The standard or regulation the profile follows."""
    fields: dict[str, Rule]

    def rule(self, field: str) -> Rule:
        """The rule for ``field``; a field the profile does not name is dropped."""
        return self.fields.get(field, Rule(action="drop"))


def _problems(profile: Profile) -> list[str]:
    problems = []
    for field in DIRECT_IDENTIFIERS:
        rule = profile.fields.get(field)
        if rule is None:
            problems.append(f"{field}: a direct identifier the profile does not handle "
                            f"(give it one of {', '.join(sorted(REMOVING_ACTIONS))})")
        elif rule.action not in REMOVING_ACTIONS:
            problems.append(f"{field}: a direct identifier would leave by '{rule.action}' "
                            f"(use one of {', '.join(sorted(REMOVING_ACTIONS))})")
    for field in FREE_TEXT:
        rule = profile.fields.get(field)
        if rule is not None and rule.action not in FREE_TEXT_ACTIONS:
            allowed = ", ".join(sorted(FREE_TEXT_ACTIONS))
            problems.append(f"{field}: free text would leave by '{rule.action}' with the names "
                            f"and numbers in it (use one of {allowed})")
    for field, rule in profile.fields.items():
        if rule.action == "generalise" and rule.to is None:
            problems.append(f"{field}: 'generalise' needs 'to'")
        if rule.action == "top_code" and (rule.ceiling is None or rule.label is None):
            problems.append(f"{field}: 'top_code' needs 'ceiling' and 'label'")
    return problems


def parse_profile(text: str, source: str) -> Profile:
    """A profile from YAML text; :class:`ProfileError` names ``source`` and every problem."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not YAML: {exc}") from None
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                            for e in exc.errors())
        raise ProfileError(f"{source}: {details}") from None
    problems = _problems(profile)
    if problems:
        raise ProfileError(f"{source}: refused: " + "; ".join(problems))
    return profile


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, or a hospital's own from a YAML file."""
    if isinstance(name_or_path, str) and name_or_path in BUILT_IN:
        text = resources.files("medspace.deid").joinpath("profiles", f"{name_or_path}.yaml")
        return parse_profile(text.read_text(encoding="utf-8"), name_or_path)
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: {exc.strerror or exc}; built-in profiles are "
                           f"{', '.join(BUILT_IN)}") from None
    return parse_profile(text, str(path))
