"""The journal at its historical path: the implementation lives in `ctdrill.journal`
(typed records, the durable writer and its event stream, the readers)."""

from ctdrill.journal.durable import (
    MIN_FREE_BYTES,
    MIN_FREE_INODES,
    PROBE_BYTES,
    check_journal_dir,
    make_dirs_durable,
)
from ctdrill.journal.reader import read_journal, read_records
from ctdrill.journal.writer import REOPENED, Journal, JournalWriteFailed

__all__ = ["MIN_FREE_BYTES", "MIN_FREE_INODES", "PROBE_BYTES", "REOPENED", "Journal",
           "JournalWriteFailed", "check_journal_dir", "make_dirs_durable", "read_journal",
           "read_records"]
