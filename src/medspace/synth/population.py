"""Who the patients are: each hospital's own patients and the people shared between hospitals.

Cross-hospital linkage and the emergency look-up need people who are treated at two or three
hospitals, under one identity but with different local MRNs. They come from a shared pool that
is replayed from the seed; everyone else is drawn on the fly, patient by patient, so neither a
hospital of a million patients nor its shared people ever sit in memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from medspace.synth.clinical import REFERENCE_DATE, Course, build_record, draw_course
from medspace.synth.divisions import DIVISIONS, Division, in_province
from medspace.synth.identities import Identity, draw_identity
from medspace.synth.profiles import HospitalProfile, hospital_index
from medspace.synth.records import PatientRecord
from medspace.synth.resident_id import IdNumberAllocator
from medspace.synth.seeding import stream

SHARED_SHARE = 0.04
"""Roughly the share of a hospital's patients who are also treated elsewhere."""
_MAX_SHARED_SHARE = 0.08
_THREE_HOSPITAL_SHARE = 0.35
"""Share of shared people treated at three hospitals rather than two."""


@dataclass(frozen=True, slots=True)
class SharedPerson:
    """A person treated at several hospitals: one identity and course, several records."""

    index: int
    identity: Identity
    course: Course
    hospitals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SharedPool:
    """The people shared between hospitals, replayed from the seed instead of kept in memory.

    Who is shared with whom comes from one cheap random stream; each person's identity and
    course come from their own stream. Every replay issues the ID numbers of all shared people
    in the same order, so a person is the same in every hospital that asks.
    """

    profiles: tuple[HospitalProfile, ...]
    sizes: tuple[tuple[str, int], ...]
    seed: int

    def memberships(self) -> Iterator[tuple[HospitalProfile, ...]]:
        """The hospitals of each shared person, in pool order; the first is their home."""
        rng = stream(self.seed, "shared-pool")
        sizes = dict(self.sizes)
        remaining = {h: round(_MAX_SHARED_SHARE * n) if n >= 3 else 0 for h, n in sizes.items()}
        target = max(1, round(SHARED_SHARE * sum(sizes.values()) / (2 + _THREE_HOSPITAL_SHARE)))
        for index in range(target):
            open_ = [p for p in self.profiles if remaining[p.id] > 0]
            if len(open_) < 2:
                return
            k = min(len(open_), 3 if index == 0 or rng.random() < _THREE_HOSPITAL_SHARE else 2)
            chosen: list[HospitalProfile] = []
            while len(chosen) < k:
                pick = rng.choices(open_, [p.size for p in open_])[0]
                open_.remove(pick)
                chosen.append(pick)
                remaining[pick.id] -= 1
            yield tuple(chosen)

    def __len__(self) -> int:
        return sum(1 for _ in self.memberships())

    def count_of(self, hospital: str) -> int:
        """How many shared people ``hospital`` treats."""
        return sum(any(p.id == hospital for p in m) for m in self.memberships())

    def members_of(self, hospital: str | None = None) -> Iterator[SharedPerson]:
        """The shared people treated at ``hospital`` (all of them for ``None``), in pool order."""
        allocator = IdNumberAllocator(owner=0)
        for index, chosen in enumerate(self.memberships()):
            rng = stream(self.seed, "shared-person", index)
            division, birth_year, male = draw_demographics(rng, chosen[0])
            if hospital is not None and all(p.id != hospital for p in chosen):
                allocator.issue(division.code, birth_year, male)
                continue
            identity = draw_identity(rng, allocator, division, birth_year, male)
            course = draw_course(rng, chosen[0], identity)
            yield SharedPerson(index, identity, course, tuple(p.id for p in chosen))


def hospital_sizes(
    profiles: Sequence[HospitalProfile], patients_per_hospital: int
) -> dict[str, int]:
    """Patients per hospital: the requested count scaled by each profile's relative size."""
    return {p.id: max(1, round(patients_per_hospital * p.size)) for p in profiles}


def build_shared_pool(
    profiles: Sequence[HospitalProfile], sizes: dict[str, int], seed: int
) -> SharedPool:
    """The shared people of these hospitals; the first one, when possible, is at three.

    About 4% of a hospital's patients are shared, never more than 8%, so small runs stay mostly
    local.
    """
    return SharedPool(tuple(profiles), tuple((p.id, sizes[p.id]) for p in profiles), seed)


def draw_demographics(rng: random.Random, profile: HospitalProfile) -> tuple[Division, int, bool]:
    """Where a new patient of ``profile``'s hospital lives, their birth year and sex."""
    if rng.random() < profile.out_of_region:
        division = rng.choice(DIVISIONS)
    else:
        division = rng.choice(in_province(profile.province_code))
    age = min(100, max(0, round(rng.gauss(profile.age_mean, profile.age_sd))))
    return division, REFERENCE_DATE.year - age, rng.random() < 0.5


def draw_local_identity(
    rng: random.Random, profile: HospitalProfile, allocator: IdNumberAllocator
) -> Identity:
    """A new patient of ``profile``'s hospital: mostly from its province, aged by its mix."""
    return draw_identity(rng, allocator, *draw_demographics(rng, profile))


def mrn_for(profile: HospitalProfile, serial: int) -> str:
    """The local medical record number: hospital prefix and a scrambled, unique serial."""
    return f"{profile.mrn_prefix}{(serial * 7919 + 1_000_003) % 100_000_000:08d}"


def generate_hospital(
    profile: HospitalProfile, n_patients: int, seed: int, shared_pool: SharedPool
) -> Iterator[PatientRecord]:
    """Yield the hospital's patients one by one, its shared people spread evenly among them.

    The hospital's own stream depends only on the seed, its profile and the pool, so one
    hospital can be regenerated alone.
    """
    m = shared_pool.count_of(profile.id)
    if m > n_patients:
        raise ValueError(f"{profile.id}: {m} shared people but only {n_patients} patients")
    rng = stream(seed, profile.id)
    allocator = IdNumberAllocator(owner=hospital_index(profile.id) + 1)
    shared = shared_pool.members_of(profile.id)
    for i in range(n_patients):
        patient_id = f"pat-{i + 1:07d}"
        mrn = mrn_for(profile, i)
        if (i * m) // n_patients != ((i + 1) * m) // n_patients:
            person = next(shared)
            yield build_record(
                rng, profile, patient_id, mrn, person.identity, person.course, person.index
            )
        else:
            identity = draw_local_identity(rng, profile, allocator)
            course = draw_course(rng, profile, identity)
            yield build_record(rng, profile, patient_id, mrn, identity, course)
