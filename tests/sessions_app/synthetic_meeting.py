"""A generated long meeting with planted topics and action items (tests and the benchmark).

``meeting(minutes=120)`` gives ~20,000 words over four speakers: four 30-minute blocks, each
about one planted topic, with generic filler talk throughout and planted action items whose
owners and due phrases are known.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SPEAKERS = [
    ("u-alice", "Alice Smith"),
    ("u-bob", "Bob Jones"),
    ("u-carol", "Carol King"),
    ("u-dan", "Dan Brown"),
]
TOPICS = {
    "pricing model": [
        "The pricing model needs a cheaper entry tier for small teams.",
        "If we change the pricing model, existing customers keep their current invoices.",
        "Our pricing model compares badly with the competitors on annual plans.",
        "A usage based pricing model would follow the value customers get.",
    ],
    "data migration": [
        "The data migration from the legacy warehouse is halfway through.",
        "We saw checksum mismatches in the data migration of the archive tables.",
        "The data migration window has to avoid the quarterly reporting run.",
        "Rolling back the data migration takes about four hours of replay.",
    ],
    "onboarding flow": [
        "The onboarding flow loses a third of new users at the invite step.",
        "A shorter onboarding flow with a sample workspace tested much better.",
        "Mobile users abandon the onboarding flow when email verification is slow.",
        "The onboarding flow copy still mentions the old plan names.",
    ],
    "security audit": [
        "The security audit found two medium issues in the session handling.",
        "External auditors want the security audit evidence in one shared folder.",
        "Penetration testing for the security audit starts after the freeze.",
        "The security audit report goes to the board with our remediation plan.",
    ],
}
FILLER_SUBJECTS = [
    "the dashboard",
    "the release",
    "our roadmap",
    "the support queue",
    "the design review",
    "the budget",
    "the team",
    "that customer",
    "the weekly report",
    "the office move",
    "the hiring plan",
    "the conference",
    "the newsletter",
    "the partner program",
    "the backlog",
    "the retrospective",
    "the mobile app",
    "the help center",
]
FILLER_PREDICATES = [
    "looks reasonable to me",
    "went better than expected last sprint",
    "still has a few rough edges",
    "needs another pass before anyone sees it",
    "was discussed in the planning meeting",
    "depends on what the vendor says",
    "is mostly on track as far as I can tell",
    "came up in the customer calls again",
    "should be fine once the holidays are over",
    "had some good feedback from sales",
]
FILLER_OPENERS = ["", "Honestly, ", "I think ", "From my side, ", "As far as I know, ", "Well, "]


@dataclass(frozen=True)
class PlantedItem:
    speaker: str
    text: str
    owner: str | None
    due: str | None


PLANTED = [
    PlantedItem(
        "Bob Jones",
        "I'll send the revised pricing model to finance by Friday.",
        "Bob Jones",
        "by Friday",
    ),
    PlantedItem(
        "Alice Smith",
        "Carol, can you check the archive checksums tomorrow?",
        "Carol King",
        "tomorrow",
    ),
    PlantedItem(
        "Carol King", "Dan will rewrite the onboarding copy next week.", "Dan Brown", "next week"
    ),
    PlantedItem(
        "Dan Brown",
        "We need to book the penetration testers by the end of the month.",
        None,
        "by the end of the month",
    ),
    PlantedItem(
        "Alice Smith",
        "Action item: Bob to share the audit evidence folder on March 3.",
        "Bob Jones",
        "on March 3",
    ),
]

# (start, end, speaker identity, speaker name, text)
Line = tuple[float, float, str, str, str]


def meeting(minutes: int = 120, seed: int = 7) -> list[Line]:
    rng = random.Random(seed)
    total = minutes * 60.0
    topics = list(TOPICS)
    planted_at = {
        int(len(PLANTED) and (i + 0.5) * total / len(PLANTED)): p for i, p in enumerate(PLANTED)
    }
    names = dict((name, identity) for identity, name in SPEAKERS)
    lines: list[Line] = []
    t = 0.0
    pending = sorted(planted_at.items())
    while t < total:
        topic = topics[min(int(t / total * len(topics)), len(topics) - 1)]
        identity, name = rng.choice(SPEAKERS)
        sentences = []
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.35:
                sentences.append(rng.choice(TOPICS[topic]))
            else:
                opener = rng.choice(FILLER_OPENERS)
                subject = rng.choice(FILLER_SUBJECTS)
                body = f"{subject} {rng.choice(FILLER_PREDICATES)}."
                sentences.append(opener + (body[0].upper() + body[1:] if not opener else body))
        if pending and t >= pending[0][0]:
            item = pending.pop(0)[1]
            name, identity, sentences = item.speaker, names[item.speaker], [item.text]
        text = " ".join(sentences)
        duration = len(text.split()) / 3.0  # 180 words per minute
        lines.append((round(t, 2), round(t + duration, 2), identity, name, text))
        t += duration + rng.uniform(0.2, 0.8)
    return lines
