"""The drill journal: typed records (records.py, payloads.py), the durable writer and
its event stream (writer.py, durable.py) and the readers (reader.py).

Everything that writes or reads a run's journal goes through this package: the
lifecycle writes, `ctdrill revert`, the report, the live display and the analysis read.
"""

from ctdrill.journal.durable import MIN_FREE_BYTES, check_journal_dir, make_dirs_durable
from ctdrill.journal.reader import read_journal, read_records
from ctdrill.journal.records import (
    RECORD_TYPES,
    SCHEMA_VERSION,
    InvalidRecord,
    KnownRecord,
    Record,
    RecordInvalid,
    UnknownRecord,
    parse_record,
)
from ctdrill.journal.writer import REOPENED, Journal, JournalWriteFailed

__all__ = ["MIN_FREE_BYTES", "RECORD_TYPES", "REOPENED", "SCHEMA_VERSION", "InvalidRecord",
           "Journal", "JournalWriteFailed", "KnownRecord", "Record", "RecordInvalid",
           "UnknownRecord", "check_journal_dir", "make_dirs_durable", "parse_record",
           "read_journal", "read_records"]
