"""The journal: callbacks that make the engine's progress durable before each network effect."""
from .items import SessionRecord  # noqa: F401 - what ``session_opened`` receives


class Journal:
    """Callbacks that make progress durable; subclass and override what you store.

    Every method is called from the submitting thread, before the network effect it announces
    becomes possible; an exception raised here stops the engine (nothing more is sent).
    """

    def session_opened(self, record):
        """A session exists in KSeF and is about to receive ``record.hashes``' items.
        Called before any upload or send. Keep ``record`` until ``session_settled``."""

    def batch_part_uploaded(self, session_reference, ordinal_number):
        """One batch part is uploaded (informational)."""

    def session_closed(self, session_reference):
        """The close request was accepted: KSeF will process the session."""

    def outcomes(self, outcomes):
        """A chunk of outcomes (list of ``Outcome``); store them in bulk."""

    def session_settled(self, session_reference):
        """Every item of the session has an outcome; its record may be dropped."""


class MemoryJournal(Journal):
    """A journal in memory: for tests, scripts and as a reference implementation."""

    def __init__(self):
        self.sessions = {}          # reference -> SessionRecord
        self.settled = set()
        self.closed = set()
        self.parts = {}             # reference -> [ordinals]
        self.results = {}           # key -> last Outcome
        self.events = []            # (event, reference or count) in order

    def session_opened(self, record):
        self.sessions[record.reference] = record
        self.events.append(("opened", record.reference))

    def batch_part_uploaded(self, session_reference, ordinal_number):
        self.parts.setdefault(session_reference, []).append(ordinal_number)

    def session_closed(self, session_reference):
        self.closed.add(session_reference)
        self.events.append(("closed", session_reference))

    def outcomes(self, outcomes):
        for outcome in outcomes:
            self.results[outcome.key] = outcome
        self.events.append(("outcomes", len(outcomes)))

    def session_settled(self, session_reference):
        self.settled.add(session_reference)
        self.events.append(("settled", session_reference))

    def pending_sessions(self):
        return [record for ref, record in self.sessions.items() if ref not in self.settled]
