"""Sets the demo's data space up the way its real operators would, once per work directory.

The operator creates the space; the regulator, five hospitals and a researcher make their own
keys and send enrolment requests; the operator enrols them and publishes the trust policy; the
hospitals join with a linkage key they share among themselves. A second run finds all of this
in place and reuses it, so the same audit log keeps growing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medspace.httpserve import free_port
from medspace.hub.space import Space, enroll, init_space, open_space, write_policy
from medspace.keyfiles import private_secret
from medspace.node.setup import init_node, join
from medspace.pki.enrollment import accept, init_participant

HOSPITALS = ["hospital-a", "hospital-b", "hospital-c", "hospital-d", "hospital-e"]
HOSTS = ["127.0.0.1", "localhost"]


@dataclass(frozen=True)
class Layout:
    """Where everything of the demo lives under its work directory."""

    root: Path

    @property
    def hub(self) -> Path:
        """The operator's data space folder."""
        return self.root / "hub"

    @property
    def regulator(self) -> Path:
        """The regulator's keys and witness state."""
        return self.root / "witness"

    @property
    def researcher(self) -> Path:
        """The researcher's keys."""
        return self.root / "researcher"

    def node(self, hospital: str) -> Path:
        """A hospital's node folder."""
        return self.root / "hospitals" / hospital / "node"

    def export(self, hospital: str) -> Path:
        """A hospital's source files, as its HIS/LIS/EMR would export them."""
        return self.root / "hospitals" / hospital / "export"

    @property
    def ports(self) -> Path:
        """The loopback ports chosen on the first run."""
        return self.root / "ports.json"


@dataclass(frozen=True)
class Ports:
    """The loopback ports of the hub, of the regulator's witness and of the first hospital's
    node API (where its desk records a patient's consent)."""

    hub: int
    witness: int
    api: int


def ports(layout: Layout) -> Ports:
    """The ports of this work directory, chosen once and kept."""
    saved = {}
    if layout.ports.exists():
        saved = json.loads(layout.ports.read_text(encoding="utf-8"))
    chosen = Ports(**{name: saved.get(name) or free_port() for name in ("hub", "witness", "api")})
    if chosen.__dict__ != saved:
        layout.ports.write_text(json.dumps(chosen.__dict__), encoding="utf-8")
    return chosen


def set_up(layout: Layout) -> Space:
    """Create and enrol every participant, unless an earlier run already did."""
    if (layout.hub / "policy.txt").exists():
        return open_space(layout.hub)
    chosen = ports(layout)
    space = init_space(layout.hub, "medspace.demo", f"https://127.0.0.1:{chosen.hub}", HOSTS)
    request = init_participant(layout.regulator, "regulator", "regulator",
                               "national-health-commission")
    accept(layout.regulator, enroll(space, request, HOSTS,
                                    witness_url=f"https://127.0.0.1:{chosen.witness}"))
    request = init_participant(layout.researcher, "researcher-17", "researcher", "university-x")
    accept(layout.researcher, enroll(space, request, HOSTS))
    enrollments = {h: enroll(space, init_node(layout.node(h), h, h), HOSTS) for h in HOSPITALS}
    policy = write_policy(space).format()
    linkage_key = private_secret(layout.root / "hospitals" / "linkage.key")
    for hospital, enrollment in enrollments.items():
        join(layout.node(hospital), enrollment, policy, linkage_key)
    return space
